package handoff_test

import (
	"testing"

	"github.com/eksir/eksir/internal/handoff"
)

func TestParseS3URL(t *testing.T) {
	for _, tc := range []struct{ in, bucket, key string }{
		{"s3://b/k.tar.zst", "b", "k.tar.zst"},
		{"s3://b/cases/inc-1/inc-1.tar.zst", "b", "cases/inc-1/inc-1.tar.zst"},
		{"s3://b/", "", ""},
		{"s3://b", "", ""},
		{"s3:///k", "", ""},
		{"s3://b/folder/", "", ""},
		{"https://b.s3.amazonaws.com/k", "", ""},
		{"b/k", "", ""},
	} {
		b, k, err := handoff.ParseS3URL(tc.in)
		if b != tc.bucket || k != tc.key || (err == nil) != (tc.bucket != "") {
			t.Errorf("ParseS3URL(%q) = %q, %q, %v; want %q, %q", tc.in, b, k, err, tc.bucket, tc.key)
		}
	}
}
