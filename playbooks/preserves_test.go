package playbooks

import (
	"strings"
	"testing"
)

// Protection from termination keeps evidence; it may run before the
// volatile capture, while any other containment may not.
func TestPreservingContainmentMayPrecedeCapture(t *testing.T) {
	const src = `apiVersion: eksir.io/v1
kind: Playbook
metadata: {name: p}
steps:
  - id: first
    action: ACTION
    with: {target: web-1}
  - id: volatile
    action: test.volatile
    needs: [first]
    with: {pod: shop/web-1}
`
	reg := testRegistry(newWorld())
	p, err := Parse("p.yaml", []byte(strings.Replace(src, "ACTION", "test.protect", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Validate(p, reg); err != nil {
		t.Fatalf("protection before capture refused: %v", err)
	}
	p, err = Parse("p.yaml", []byte(strings.Replace(src, "ACTION", "test.label", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Validate(p, reg); err == nil || !strings.Contains(err.Error(), "may run before volatile capture") {
		t.Fatalf("containment before capture: want the capture-first error, got %v", err)
	}
}
