//go:build eksirtest

package kube

import "net/http"

// SetTestTransport makes every client built afterwards send its requests
// through wrap. Test builds only (-tags eksirtest): the crash tests use it
// to kill eksir inside a step.
func SetTestTransport(wrap func(http.RoundTripper) http.RoundTripper) { testTransport = wrap }
