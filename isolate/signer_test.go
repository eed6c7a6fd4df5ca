package isolate_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"testing"

	"github.com/eksir/eksir/evidence"
)

func testSigner(t *testing.T) *evidence.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return evidence.NewSigner(priv)
}
