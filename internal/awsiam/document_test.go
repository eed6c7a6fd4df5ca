package awsiam

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestDecodeEncodedAndPlain(t *testing.T) {
	plain := `{"Version":"2012-10-17","Statement":{"Sid":"A1","Effect":"Deny","Action":["s3:GetObject","*"],"Resource":"*",` +
		`"Condition":{"DateLessThan":{"aws:TokenIssueTime":"2026-11-30T11:00:00Z"}}}}`
	want := Document{Version: Version, Statement: Statements{{Sid: "A1", Effect: "Deny", Action: Values{"*", "s3:GetObject"}, Resource: Values{"*"},
		Condition: map[string]map[string]Values{"DateLessThan": {"aws:TokenIssueTime": {"2026-11-30T11:00:00Z"}}}}}}
	for name, in := range map[string]string{"plain": plain, "query-escaped": url.QueryEscape(plain), "path-escaped": url.PathEscape(plain)} {
		got, err := Decode(in)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !Equal(got, want) {
			t.Errorf("%s: decoded %s, want %s", name, got, want)
		}
	}
}

func TestDecodeRefuses(t *testing.T) {
	for name, in := range map[string]string{
		"not JSON":          "%7Bnope",
		"bad escape":        "%zz",
		"unknown element":   `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"*"}]}`,
		"no statement":      `{"Version":"2012-10-17"}`,
		"bad effect":        `{"Version":"2012-10-17","Statement":[{"Effect":"Maybe","Action":"*"}]}`,
		"action not string": `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":1}]}`,
		"trailing":          `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*"}]} {}`,
		"too large":         `{"Version":"` + strings.Repeat("x", maxDocument) + `"}`,
	} {
		if _, err := Decode(in); !errors.Is(err, ErrDocument) {
			t.Errorf("%s: err = %v, want ErrDocument", name, err)
		}
	}
}

func TestEqual(t *testing.T) {
	at := time.Date(2026, 11, 30, 11, 0, 0, 0, time.UTC)
	a := DenyOlderSessions("S", at)
	if !Equal(a, DenyOlderSessions("S", at.In(time.FixedZone("x", 3600)))) {
		t.Error("same instant in another zone differs")
	}
	for name, b := range map[string]Document{
		"time":   DenyOlderSessions("S", at.Add(time.Second)),
		"sid":    DenyOlderSessions("T", at),
		"pod":    DenyPodSessions("S", "uid"),
		"effect": {Version: Version, Statement: Statements{{Sid: "S", Effect: "Allow", Action: Values{"*"}, Resource: Values{"*"}, Condition: a.Statement[0].Condition}}},
	} {
		if Equal(a, b) {
			t.Errorf("%s: documents compare equal", name)
		}
	}
	if got, ok := a.IssuedBefore(); !ok || !got.Equal(at) {
		t.Errorf("IssuedBefore = %v, %v", got, ok)
	}
}

func TestDenyPodSessions(t *testing.T) {
	got := DenyPodSessions("EksirDenyPod1", "0b5c").String()
	want := `{"Version":"2012-10-17","Statement":[{"Sid":"EksirDenyPod1","Effect":"Deny","Action":"*","Resource":"*","Condition":{"StringEquals":{"aws:PrincipalTag/kubernetes-pod-uid":"0b5c"}}}]}`
	if got != want {
		t.Errorf("document\n got %s\nwant %s", got, want)
	}
}

func TestParseARN(t *testing.T) {
	a, err := ParseRoleARN("arn:aws:iam::123456789012:role/service-role/eks/web")
	if err != nil || a.Account != "123456789012" || a.Name != "web" || a.Partition != "aws" {
		t.Fatalf("ParseRoleARN = %+v, %v", a, err)
	}
	for _, bad := range []string{"", "web", "arn:aws:iam::12345:role/web", "arn:aws:s3:::bucket/x", "arn:aws:iam::123456789012:user/u",
		"arn:aws:iam::123456789012:role/", "arn:aws:iam::123456789012:role"} {
		if _, err := ParseRoleARN(bad); err == nil {
			t.Errorf("ParseRoleARN(%q): no error", bad)
		}
	}
}

// FuzzDecode holds the decoder to two properties on any input, since a
// document comes from IAM or whoever wrote the policy: it never panics,
// and what it accepts survives a round trip (marshal, URL-encode as IAM
// does, decode again) unchanged, so plain and encoded readings agree.
func FuzzDecode(f *testing.F) {
	f.Add(DenyOlderSessions("EksirDenyOlderSessions0123456789", time.Unix(1e9, 0)).String())
	f.Add(url.QueryEscape(DenyPodSessions("S", "u-1").String()))
	f.Add(`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":["a","b"]}}`)
	f.Add("%7B%22Version%22%3A%222012-10-17%22%7D")
	f.Fuzz(func(t *testing.T, in string) {
		d, err := Decode(in)
		if err != nil {
			return
		}
		s := d.String()
		for _, form := range []string{s, url.QueryEscape(s)} {
			again, err := Decode(form)
			if err != nil {
				t.Fatalf("re-decoding %q: %v", form, err)
			}
			if !Equal(d, again) {
				t.Fatalf("round trip changed the document: %s -> %s", s, again)
			}
		}
	})
}
