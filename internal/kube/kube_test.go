package kube

import (
	"os"
	"path/filepath"
	"testing"
)

const kubeconfig = `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "https://127.0.0.1:6443", insecure-skip-tls-verify: true}
users:
- name: u
  user: {token: t}
contexts:
- name: a
  context: {cluster: c, user: u}
- name: b
  context: {cluster: c, user: u, namespace: x}
current-context: a
`

func TestRESTConfigDefaultsAndOverrides(t *testing.T) {
	p := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(p, []byte(kubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := RESTConfig(Options{Kubeconfig: p})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Host != "https://127.0.0.1:6443" || cfg.QPS != 50 || cfg.Burst != 100 || cfg.Timeout == 0 {
		t.Errorf("defaults: host %s qps %v burst %d timeout %v", cfg.Host, cfg.QPS, cfg.Burst, cfg.Timeout)
	}
	cfg, err = RESTConfig(Options{Kubeconfig: p, Context: "b", QPS: 500, Burst: 1000})
	if err != nil || cfg.QPS != 500 || cfg.Burst != 1000 {
		t.Errorf("overrides: %v %v %d", err, cfg.QPS, cfg.Burst)
	}
	if _, err := RESTConfig(Options{Kubeconfig: p, Context: "missing"}); err == nil {
		t.Error("unknown context: want error")
	}
	if _, err := New(Options{Kubeconfig: filepath.Join(t.TempDir(), "none")}); err == nil {
		t.Error("missing kubeconfig: want error")
	}
}
