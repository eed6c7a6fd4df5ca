package isolate

import "testing"

func TestCalicoSelector(t *testing.T) {
	l := map[string]string{"app": "api", "tier": "web", "projectcalico.org/namespace": "pay"}
	for _, tc := range []struct {
		sel  string
		want bool
	}{
		{"", true},
		{"all()", true},
		{"app == 'api'", true},
		{`app == "api"`, true},
		{"app == 'web'", false},
		{"app != 'web'", true},
		{"missing != 'x'", true},
		{"has(tier)", true},
		{"!has(tier)", false},
		{"!has(missing)", true},
		{"app == 'api' && has(tier)", true},
		{"app == 'api' && !has(tier)", false},
		{"app == 'x' || tier == 'web'", true},
		{"(app == 'x' || tier == 'web') && projectcalico.org/namespace == 'pay'", true},
		{"app in {'a', 'api'}", true},
		{"app not in {'a', 'api'}", false},
		{"missing not in {'a'}", true},
	} {
		sel, err := parseCalicoSelector(tc.sel)
		if err != nil {
			t.Errorf("%q: %v", tc.sel, err)
			continue
		}
		if got := sel(l); got != tc.want {
			t.Errorf("%q = %v, want %v", tc.sel, got, tc.want)
		}
	}
	for _, bad := range []string{"app =", "app == 'x", "has(", "app ~ 'x'", "app == 'x' &&", "(app == 'x'"} {
		if _, err := parseCalicoSelector(bad); err == nil {
			t.Errorf("%q: want a parse error", bad)
		}
	}
}

func TestInstanceID(t *testing.T) {
	if got := instanceID("aws:///us-east-1a/i-0abc"); got != "i-0abc" {
		t.Errorf("got %q", got)
	}
	if got := instanceID("kind://docker/x/y"); got != "" {
		t.Errorf("got %q", got)
	}
}
