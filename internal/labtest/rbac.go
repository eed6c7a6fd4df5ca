package labtest

import (
	"sync"
	"syscall"
	"testing"

	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/eksir/eksir/internal/kube"
)

// AsServiceAccount returns clients authenticated as a new ServiceAccount in
// the test's namespace, bound to role (created under a name unique to the
// test) and nothing else. Integration tests use it to prove that the
// ClusterRole generated from the actions' declared permissions suffices:
// an undeclared call fails with Forbidden.
func (e *Env) AsServiceAccount(t testing.TB, role *rbacv1.ClusterRole) *kube.Clients {
	t.Helper()
	return e.AsServiceAccountNamed(t, "eksir", role)
}

// AsServiceAccountNamed is AsServiceAccount for a second identity in one
// test: the ServiceAccount, role and binding are named after name.
func (e *Env) AsServiceAccountNamed(t testing.TB, name string, role *rbacv1.ClusterRole) *kube.Clients {
	t.Helper()
	ctx, cs := t.Context(), e.Kube.Typed
	name = e.Prefix + name
	sa, err := cs.CoreV1().ServiceAccounts(e.Namespace).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create service account: %v", err)
	}
	r := role.DeepCopy()
	r.Name = name
	if _, err := cs.RbacV1().ClusterRoles().Create(ctx, r, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create cluster role: %v", err)
	}
	if _, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: sa.Name, Namespace: e.Namespace}}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create cluster role binding: %v", err)
	}
	exp := int64(3600)
	tok, err := cs.CoreV1().ServiceAccounts(e.Namespace).CreateToken(ctx, sa.Name, &authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{ExpirationSeconds: &exp}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token request: %v", err)
	}
	cfg := rest.AnonymousClientConfig(e.Kube.Config)
	cfg.BearerToken = tok.Status.Token
	typed, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatalf("service account client: %v", err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatalf("service account client: %v", err)
	}
	return &kube.Clients{Config: cfg, Typed: typed, Dynamic: dyn}
}

// PauseAPIServer freezes the lab's kube-apiserver (SIGSTOP) until the
// returned resume is called (SIGCONT; also on cleanup): requests hang and
// time out as they do when the API server restarts mid-step. Tests using it
// must not run in parallel with other tests of the binary.
func (e *Env) PauseAPIServer(t testing.TB) (resume func()) {
	t.Helper()
	var pid int
	for _, p := range e.State.Procs {
		if p.Name == "kube-apiserver" {
			pid = p.PID
		}
	}
	if pid == 0 {
		t.Fatalf("no kube-apiserver process in the lab state")
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatalf("pause kube-apiserver: %v", err)
	}
	var once sync.Once
	resume = func() {
		once.Do(func() {
			if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
				t.Errorf("resume kube-apiserver: %v", err)
			}
		})
	}
	t.Cleanup(resume)
	return resume
}
