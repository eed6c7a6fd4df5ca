package isolate

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/smithy-go"
)

func TestSplitTagRoundTrip(t *testing.T) {
	var groups []string
	for i := range 16 {
		groups = append(groups, "sg-0123456789abcdef"+string(rune('a'+i)))
	}
	v := strings.Join(groups, ",")
	tags := splitTag("eksir.io/isolated-x", v)
	if len(tags) < 2 {
		t.Fatalf("16 groups (%d chars) fit one tag value: %v", len(v), tags)
	}
	for k, part := range tags {
		if len(part) > maxTagValue {
			t.Errorf("%s: %d characters", k, len(part))
		}
	}
	tags["eksir.io/isolated-other"] = "sg-1"
	got, ok := joinTag(tags, "eksir.io/isolated-x")
	if !ok || got != v {
		t.Errorf("joined %q, want %q", got, v)
	}
	if keys := tagKeysOf(tags, "eksir.io/isolated-x"); len(keys) != len(tags)-1 {
		t.Errorf("keys %v", keys)
	}
	if o := otherBases(tags, isolatedPrefix, "eksir.io/isolated-x"); !reflect.DeepEqual(o, []string{"eksir.io/isolated-other"}) {
		t.Errorf("other incidents %v", o)
	}
	if one := splitTag("k", "sg-1"); !reflect.DeepEqual(one, map[string]string{"k": "sg-1"}) {
		t.Errorf("short value: %v", one)
	}
}

func TestDryRunCheck(t *testing.T) {
	for _, c := range []struct {
		err     error
		allowed bool
	}{
		{&smithy.GenericAPIError{Code: "DryRunOperation"}, true},
		{&smithy.GenericAPIError{Code: "UnauthorizedOperation"}, false},
		{errors.New("connection refused"), false},
	} {
		if got := dryRunCheck("ec2:X", c.err); got.Allowed != c.allowed {
			t.Errorf("%v: %+v", c.err, got)
		}
	}
	if got := dryRunCheck("ec2:X", nil); !got.Allowed || got.Reason == "" {
		t.Errorf("ignored dry run: %+v", got)
	}
}

func TestProtectRecordTags(t *testing.T) {
	r := protectRecord{Termination: true, ASG: "eks-ng", ScaleIn: true, Mode: ASGDetach}
	got, ok := parseProtect(r.tags("k"), "k")
	if !ok || got != r {
		t.Errorf("round trip %+v, want %+v", got, r)
	}
}
