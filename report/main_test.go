package report_test

import (
	"os"
	"testing"

	"github.com/eksir/eksir/internal/labtest"
)

// TestMain lets the lab tests (the fixture run, the drills) start the
// lab; the others never touch it.
func TestMain(m *testing.M) { os.Exit(labtest.Main(m)) }
