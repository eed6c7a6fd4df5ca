package main

import "github.com/eksir/eksir/action"

// newRegistry returns every action eksir ships. Actions register here and
// nowhere else, so plan, run, release, permissions and docs agree.
func newRegistry() *action.Registry {
	r := action.NewRegistry()
	return r
}
