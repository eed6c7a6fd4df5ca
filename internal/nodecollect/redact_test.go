package nodecollect

import (
	"slices"
	"testing"
)

func TestRedactArgs(t *testing.T) {
	tests := []struct {
		name    string
		in      []string
		want    []string
		changed bool
	}{
		{"nothing secret", []string{"nginx", "-g", "daemon off;"}, []string{"nginx", "-g", "daemon off;"}, false},
		{"--password=", []string{"app", "--password=hunter2", "--port=80"}, []string{"app", "--password=<redacted>", "--port=80"}, true},
		{"single dash", []string{"app", "-token=abc"}, []string{"app", "-token=<redacted>"}, true},
		{"separate value", []string{"app", "--token", "abc", "next"}, []string{"app", "--token", "<redacted>", "next"}, true},
		{"flag then flag", []string{"app", "--auth", "--verbose"}, []string{"app", "--auth", "--verbose"}, false},
		{"flag at end", []string{"app", "--secret"}, []string{"app", "--secret"}, false},
		{"compound names", []string{"app", "--db-password=x", "--client_secret", "y", "--api-key=z", "--APIKEY=w"},
			[]string{"app", "--db-password=<redacted>", "--client_secret", "<redacted>", "--api-key=<redacted>", "--APIKEY=<redacted>"}, true},
		{"words not substrings", []string{"app", "--keyboard=us", "--monkey", "x", "--passage=1"},
			[]string{"app", "--keyboard=us", "--monkey", "x", "--passage=1"}, false},
		{"env style", []string{"env", "AWS_SECRET_ACCESS_KEY=abc", "HOME=/root", "MY.TOKEN=t"},
			[]string{"env", "AWS_SECRET_ACCESS_KEY=<redacted>", "HOME=/root", "MY.TOKEN=<redacted>"}, true},
		{"not env style", []string{"sh", "-c", "echo password=x"}, []string{"sh", "-c", "echo password=x"}, false},
		{"url userinfo", []string{"curl", "https://bob:s3cr3t@example.com/x?y=1"}, []string{"curl", "https://bob:<redacted>@example.com/x?y=1"}, true},
		{"url without password", []string{"git", "https://bob@example.com/r.git", "http://h:80/"}, []string{"git", "https://bob@example.com/r.git", "http://h:80/"}, false},
		{"url inside flag value", []string{"app", "--db=postgres://u:p@db:5432/x", "--dsn", "mysql://a:b@h/"},
			[]string{"app", "--db=postgres://u:<redacted>@db:5432/x", "--dsn", "mysql://a:<redacted>@h/"}, true},
		{"url in program name", []string{"x://u:p@h"}, []string{"x://u:<redacted>@h"}, true},
		{"two urls", []string{"a", "redis://:pw@r1 redis://:pw2@r2"}, []string{"a", "redis://:<redacted>@r1 redis://:<redacted>@r2"}, true},
		{"program name kept", []string{"--password=x"}, []string{"--password=x"}, false},
		{"empty", []string{}, []string{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := slices.Clone(tc.in)
			got, changed := RedactArgs(in)
			if !slices.Equal(got, tc.want) || changed != tc.changed {
				t.Errorf("RedactArgs(%q) = %q, %v; want %q, %v", tc.in, got, changed, tc.want, tc.changed)
			}
			if !slices.Equal(in, tc.in) {
				t.Errorf("input modified: %q", in)
			}
		})
	}
}
