// Package kube builds Kubernetes clients from a kubeconfig, with the rate
// limits and timeouts eksir uses everywhere, so that every action package
// talks to the API server the same way.
package kube

import (
	"fmt"
	"net/http"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Options tune the client. The zero value is usable.
type Options struct {
	// Kubeconfig is a path; empty means the usual chain ($KUBECONFIG, then
	// ~/.kube/config, then in-cluster).
	Kubeconfig string
	// Context selects a kubeconfig context; empty means the current one.
	Context string
	// QPS and Burst override client-go's defaults (5 and 10), which are far
	// too low for bulk work such as seeding a lab or collecting from every node.
	QPS   float32
	Burst int
	// Timeout bounds each request; zero means 30 s.
	Timeout time.Duration
}

// testTransport wraps every client's transport when set, which only test
// builds do (testhook_eksirtest.go).
var testTransport func(http.RoundTripper) http.RoundTripper

// RESTConfig resolves the kubeconfig into a REST config.
func RESTConfig(o Options) (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if o.Kubeconfig != "" {
		rules.ExplicitPath = o.Kubeconfig
	}
	overrides := &clientcmd.ConfigOverrides{CurrentContext: o.Context}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig %q: %w", o.Kubeconfig, err)
	}
	cfg.QPS, cfg.Burst = 50, 100
	if o.QPS > 0 {
		cfg.QPS = o.QPS
	}
	if o.Burst > 0 {
		cfg.Burst = o.Burst
	}
	cfg.Timeout = 30 * time.Second
	if o.Timeout > 0 {
		cfg.Timeout = o.Timeout
	}
	cfg.UserAgent = "eksir"
	cfg.WrapTransport = testTransport
	return cfg, nil
}

// Clients holds the typed and dynamic clients built from one REST config.
type Clients struct {
	Config  *rest.Config
	Typed   kubernetes.Interface
	Dynamic dynamic.Interface
}

// New builds typed and dynamic clients from a kubeconfig.
func New(o Options) (*Clients, error) {
	cfg, err := RESTConfig(o)
	if err != nil {
		return nil, err
	}
	typed, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("build Kubernetes client: %w", err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("build dynamic Kubernetes client: %w", err)
	}
	return &Clients{Config: cfg, Typed: typed, Dynamic: dyn}, nil
}
