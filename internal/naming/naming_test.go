package naming

import "testing"

func TestSplitRef(t *testing.T) {
	ns, name, err := SplitRef("payments/checkout-api-7d9f")
	if err != nil || ns != "payments" || name != "checkout-api-7d9f" {
		t.Fatalf("SplitRef = %q, %q, %v", ns, name, err)
	}
	for _, bad := range []string{"", "pod", "/pod", "ns/", "ns/a/b", "/"} {
		if _, _, err := SplitRef(bad); err == nil {
			t.Errorf("SplitRef(%q): no error", bad)
		}
	}
}

func TestShortHash(t *testing.T) {
	// Names derived from it must not change between releases, or a resumed
	// run would miss the objects an earlier one created.
	if got, want := ShortHash("inc-1", 8), "186608b2"; got != want {
		t.Fatalf("ShortHash(inc-1, 8) = %q, want %q (sha256sum)", got, want)
	}
}
