package main

import (
	"github.com/eksir/eksir/action"
	"github.com/eksir/eksir/collect"
	"github.com/eksir/eksir/isolate"
)

// newRegistry returns every action eksir ships. Actions register here and
// nowhere else, so plan, run, release, permissions and docs agree.
func newRegistry() *action.Registry {
	r := action.NewRegistry()
	isolate.Register(r)
	collect.Register(r)
	return r
}
