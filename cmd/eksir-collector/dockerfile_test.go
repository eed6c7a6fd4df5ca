package main

import (
	"os"
	"strings"
	"testing"
)

// The Dockerfile must build the image eksir's image delivery expects: the
// binary at /eksir-collector, started as `/eksir-collector idle`, nothing
// else in the image.
func TestDockerfileMatchesImageDelivery(t *testing.T) {
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"FROM":       "scratch",
		"COPY":       "--chmod=0755 bin/eksir-collector-linux-${TARGETARCH} /eksir-collector",
		"ENTRYPOINT": `["/eksir-collector"]`,
		"CMD":        `["idle"]`,
		"USER":       "0",
	}
	got := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if line = strings.TrimSpace(line); line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, _ := strings.Cut(line, " ")
		if _, dup := got[k]; dup && k != "ARG" {
			t.Errorf("instruction %s twice", k)
		}
		got[k] = v
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s %q, want %q", k, got[k], v)
		}
	}
	if n := strings.Count(string(b), "\nFROM "); n != 1 {
		t.Errorf("%d FROM lines: the image must be one stage from scratch", n)
	}
}
