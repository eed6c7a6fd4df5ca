package isolate

import (
	"maps"
	"regexp"
	"strings"
	"testing"
)

func TestRevokePolicyNames(t *testing.T) {
	// IAM: policy names [\w+=,.@-]{1,128}; Sids alphanumeric.
	name := regexp.MustCompile(`^[\w+=,.@-]{1,128}$`)
	sid := regexp.MustCompile(`^[0-9A-Za-z]+$`)
	long := strings.Repeat("incident/with spaces/", 20)
	for _, inc := range []string{"inc-1", long} {
		for _, p := range [][2]string{pair(denyOlderPolicy(inc)), pair(denyPodPolicy(inc, "payments/web-0"))} {
			if !name.MatchString(p[0]) || !sid.MatchString(p[1]) {
				t.Errorf("incident %q: policy %q sid %q not valid for IAM", inc, p[0], p[1])
			}
		}
	}
	a, _ := denyOlderPolicy("inc-1")
	b, _ := denyOlderPolicy("inc-2")
	c, _ := denyPodPolicy("inc-1", "payments/web-0")
	d, _ := denyPodPolicy("inc-1", "payments/web-1")
	if a == b || c == d {
		t.Error("two incidents or two pods share a policy name")
	}
}

func pair(a, b string) [2]string { return [2]string{a, b} }

func TestKeysTagValue(t *testing.T) {
	m := map[string]string{"AKIAB": "Inactive", "AKIAA": "Active", loginEntry: loginDeleted}
	s := encodeKeys(m)
	if s != "AKIAA=Active AKIAB=Inactive login-profile=deleted" {
		t.Errorf("encodeKeys = %q", s)
	}
	// IAM tag values: letters, digits, spaces and _.:/=+-@, at most 256.
	if !regexp.MustCompile(`^[\w .:/=+\-@]{0,256}$`).MatchString(s) {
		t.Errorf("%q is not a valid IAM tag value", s)
	}
	if got := decodeKeys(s); !maps.Equal(got, m) {
		t.Errorf("decodeKeys(%q) = %v", s, got)
	}
	if got := decodeKeys("  junk =x AKIAC=Active"); !maps.Equal(got, map[string]string{"AKIAC": "Active"}) {
		t.Errorf("decodeKeys with junk = %v", got)
	}
}
