// Package awsfault is a fault-injection proxy for AWS APIs: a reverse proxy
// in front of an AWS endpoint (the lab's moto) that answers a share of the
// calls, or every call of chosen operations, with the throttling or
// unavailability errors AWS sends, in the wire format of each protocol the
// SDK's clients speak. It shows that eksir's retries carry a response
// through a throttled account, and that a step which cannot complete fails
// with the AWS error code.
//
// The proxy tells the service by the SigV4 signing scope of the
// Authorization header (Credential=KEY/DATE/REGION/SERVICE/aws4_request;
// "unsigned" without one)
// and the operation by the protocol: the Action form field of the query
// protocols (EC2, IAM, STS, Auto Scaling), the X-Amz-Target header of the
// JSON protocols (CloudWatch Logs, SSM, CloudTrail), the x-id query
// parameter the SDK adds to most S3 operations, else "METHOD /path" (EKS
// and GuardDuty's REST-JSON, the other S3 operations).
package awsfault

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"
)

// Fault is a kind of error the proxy injects.
type Fault int

const (
	// Throttle is the service's throttling error: EC2 RequestLimitExceeded
	// (503), Throttling for the query protocols (400), ThrottlingException
	// for the JSON protocols (400) and REST-JSON (429), S3 SlowDown (503).
	Throttle Fault = iota
	// Unavailable is HTTP 503 ServiceUnavailable in the protocol's format
	// (ServiceUnavailableException for the JSON protocols, as their
	// models name it).
	Unavailable
)

func (f Fault) String() string {
	if f == Unavailable {
		return "unavailable"
	}
	return "throttle"
}

// Options choose which calls fail and how.
type Options struct {
	// Rate is the share of the chosen calls that fail, 0 to 1.
	Rate float64
	// Seed seeds the random choice, so a failing run can be replayed.
	Seed int64
	// Only, when set, limits Rate to the calls it accepts. service is the
	// signing name ("ec2", "iam", "sts", "autoscaling", "s3", "eks", ...).
	Only func(service, op string) bool
	// Always, when set, fails every call it accepts, whatever Rate: an
	// operation that can never complete.
	Always func(service, op string) bool
	// Faults are drawn from at random for each injected error; empty means
	// Throttle only.
	Faults []Fault
	// Latency is added before every call is forwarded: the round trip of a
	// real regional endpoint, which a local emulator does not have, so that
	// benchmarks weigh call counts and concurrency as AWS would.
	Latency time.Duration
}

// Counts are what the proxy did with the calls of one operation.
type Counts struct {
	Injected, Forwarded int
}

// Proxy is an http.Handler; serve it with httptest.NewServer or
// http.Server and point the SDK's endpoint at it.
type Proxy struct {
	o     Options
	proxy *httputil.ReverseProxy

	mu     sync.Mutex
	rng    *rand.Rand
	counts map[string]*Counts
}

// New returns a proxy forwarding to target (moto's URL) the calls it does
// not fail.
func New(target *url.URL, o Options) *Proxy {
	if len(o.Faults) == 0 {
		o.Faults = []Fault{Throttle}
	}
	p := &Proxy{o: o, rng: rand.New(rand.NewPCG(uint64(o.Seed), 0x65_6b_73_69_72)), counts: map[string]*Counts{}}
	p.proxy = &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(target)
		r.Out.Host = r.In.Host
	}}
	return p
}

// Counts returns the counts per "service:operation".
func (p *Proxy) Counts() map[string]Counts {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]Counts, len(p.counts))
	for k, c := range p.counts {
		out[k] = *c
	}
	return out
}

// Injected returns the number of injected errors over all operations.
func (p *Proxy) Injected() int {
	n := 0
	for _, c := range p.Counts() {
		n += c.Injected
	}
	return n
}

// String lists the counts, sorted, for a test's log.
func (p *Proxy) String() string {
	c := p.Counts()
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s injected=%d forwarded=%d\n", k, c[k].Injected, c[k].Forwarded)
	}
	return b.String()
}

// ServeHTTP fails the call or forwards it.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	call, err := identify(r)
	if err != nil {
		http.Error(w, "awsfault: "+err.Error(), http.StatusBadRequest)
		return
	}
	if d := p.o.Latency; d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	fault, inject := p.decide(call)
	if inject {
		writeFault(w, call, fault)
		return
	}
	p.proxy.ServeHTTP(w, r)
}

func (p *Proxy) decide(c call) (Fault, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	key := c.service + ":" + c.op
	n := p.counts[key]
	if n == nil {
		n = &Counts{}
		p.counts[key] = n
	}
	inject := p.o.Always != nil && p.o.Always(c.service, c.op)
	if !inject && (p.o.Only == nil || p.o.Only(c.service, c.op)) {
		// Draw only for eligible calls, so that Only does not change which
		// of them fail for a given seed.
		inject = p.rng.Float64() < p.o.Rate
	}
	if !inject {
		n.Forwarded++
		return 0, false
	}
	n.Injected++
	return p.o.Faults[p.rng.IntN(len(p.o.Faults))], true
}

// protocol is how a service encodes requests and errors.
type protocol int

const (
	ec2Query protocol = iota
	awsQuery
	awsJSON
	restXML // S3
	restJSON
)

type call struct {
	service, op string
	proto       protocol
}

// identify reads the service and operation of a request. The body is read
// only for form-encoded requests, and restored for the forwarded request.
func identify(r *http.Request) (call, error) {
	var c call
	// Unsigned calls (STS AssumeRoleWithWebIdentity, which IRSA makes)
	// carry no scope: they are service "unsigned", still subject to faults.
	c.service = "unsigned"
	if _, scope, ok := strings.Cut(r.Header.Get("Authorization"), "Credential="); ok {
		scope, _, _ = strings.Cut(scope, ",")
		parts := strings.Split(scope, "/")
		if len(parts) != 5 {
			return c, fmt.Errorf("unexpected SigV4 signing scope %q", scope)
		}
		c.service = parts[3]
	}
	switch {
	case r.Header.Get("X-Amz-Target") != "":
		t := r.Header.Get("X-Amz-Target")
		c.proto, c.op = awsJSON, t[strings.LastIndex(t, ".")+1:]
	case strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded"):
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return c, fmt.Errorf("read request body: %w", err)
		}
		r.Body.Close()
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return c, fmt.Errorf("parse query body: %w", err)
		}
		c.proto, c.op = awsQuery, form.Get("Action")
		if c.service == "ec2" {
			c.proto = ec2Query
		}
	case c.service == "s3":
		c.proto = restXML
	default:
		c.proto = restJSON
	}
	if c.op == "" {
		if id := r.URL.Query().Get("x-id"); id != "" {
			c.op = id
		} else {
			c.op = r.Method + " " + r.URL.Path
		}
	}
	return c, nil
}

// writeFault answers as the service would.
func writeFault(w http.ResponseWriter, c call, f Fault) {
	const reqID = "eksir-awsfault-0000"
	code, msg, status := "ServiceUnavailable", "Service is unavailable, try again later.", http.StatusServiceUnavailable
	if f == Throttle {
		msg = "Rate exceeded"
		switch c.proto {
		case ec2Query:
			code = "RequestLimitExceeded"
		case awsQuery:
			code, status = "Throttling", http.StatusBadRequest
		case awsJSON:
			code, status = "ThrottlingException", http.StatusBadRequest
		case restJSON:
			code, status = "ThrottlingException", http.StatusTooManyRequests
		case restXML:
			code, msg = "SlowDown", "Please reduce your request rate."
		}
	}
	h := w.Header()
	h.Set("X-Amzn-RequestId", reqID)
	switch c.proto {
	case ec2Query:
		h.Set("Content-Type", "text/xml;charset=UTF-8")
		w.WriteHeader(status)
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+`<Response><Errors><Error><Code>%s</Code><Message>%s</Message></Error></Errors><RequestID>%s</RequestID></Response>`, code, msg, reqID)
	case awsQuery:
		h.Set("Content-Type", "text/xml")
		w.WriteHeader(status)
		fmt.Fprintf(w, `<ErrorResponse><Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>%s</RequestId></ErrorResponse>`, code, msg, reqID)
	case restXML:
		h.Set("Content-Type", "application/xml")
		h.Set("X-Amz-Request-Id", reqID)
		w.WriteHeader(status)
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+`<Error><Code>%s</Code><Message>%s</Message><RequestId>%s</RequestId></Error>`, code, msg, reqID)
	default:
		if code == "ServiceUnavailable" {
			code = "ServiceUnavailableException"
		}
		if c.proto == awsJSON {
			h.Set("Content-Type", "application/x-amz-json-1.1")
		} else {
			h.Set("Content-Type", "application/json")
		}
		h.Set("X-Amzn-ErrorType", code)
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"__type":%q,"message":%q}`, code, msg)
	}
}
