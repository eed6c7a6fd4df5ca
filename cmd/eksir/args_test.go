package main

import (
	"slices"
	"testing"

	"github.com/eksir/eksir/cmd/internal/evidencecli"
)

func TestInterleaveFlags(t *testing.T) {
	app := newApp()
	tests := []struct {
		name string
		in   []string
		want []string
	}{
		{"flags after args", []string{"eksir", "verify", "a.tar", "--pubkey", "k.pub"}, []string{"eksir", "verify", "--pubkey", "k.pub", "a.tar"}},
		{"global flag after command", []string{"eksir", "verify", "a.tar", "--output", "json"}, []string{"eksir", "--output", "json", "verify", "a.tar"}},
		{"global flag with =", []string{"eksir", "seal", "d", "-i", "X", "--case-dir=c"}, []string{"eksir", "--case-dir=c", "seal", "-i", "X", "d"}},
		{"subcommand", []string{"eksir", "custody", "show", "a.tar", "--pubkey", "p"}, []string{"eksir", "custody", "show", "--pubkey", "p", "a.tar"}},
		{"stdin dash stays positional", []string{"eksir", "acquire", "-", "--as", "x", "-i", "I"}, []string{"eksir", "acquire", "--as", "x", "-i", "I", "-"}},
		{"after -- untouched", []string{"eksir", "verify", "--", "--odd-name"}, []string{"eksir", "verify", "--", "--odd-name"}},
		{"bool flag takes no value", []string{"eksir", "version", "--no-color", "x"}, []string{"eksir", "--no-color", "version", "x"}},
		{"unknown command left alone", []string{"eksir", "nope", "--x"}, []string{"eksir", "nope", "--x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := evidencecli.InterleaveFlags(app, tt.in); !slices.Equal(got, tt.want) {
				t.Errorf("InterleaveFlags(%q)\n got %q\nwant %q", tt.in, got, tt.want)
			}
		})
	}
}
