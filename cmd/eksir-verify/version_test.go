package main

import (
	"bytes"
	"encoding/json"
	"runtime"
	"strings"
	"testing"
)

// TestVersion: a lab can say which verifier it ran, in text and in JSON.
func TestVersion(t *testing.T) {
	version, commit = "v1.2.3", "abc123"
	defer func() { version, commit = "dev", "none" }()
	var out bytes.Buffer
	app := newApp()
	app.Writer = &out
	if err := app.Run([]string{"eksir-verify", "version"}); err != nil {
		t.Fatal(err)
	}
	if want := "eksir-verify v1.2.3 (commit abc123, " + runtime.Version() + ")\n"; out.String() != want {
		t.Errorf("version printed %q, want %q", out.String(), want)
	}
	out.Reset()
	if err := app.Run([]string{"eksir-verify", "-o", "json", "version"}); err != nil {
		t.Fatal(err)
	}
	var info map[string]string
	if err := json.Unmarshal(out.Bytes(), &info); err != nil {
		t.Fatalf("version -o json: %v\n%s", err, out.String())
	}
	if info["version"] != "v1.2.3" || info["commit"] != "abc123" || !strings.HasPrefix(info["go"], "go") {
		t.Errorf("version -o json = %v", info)
	}
}
