// Package lab runs a local stand-in for an EKS cluster and its AWS account:
// a real etcd and kube-apiserver, kwok simulating nodes and pods, and moto
// emulating AWS. It starts, stops and reports on those processes, writes a
// kubeconfig and an env file, and seeds incident scenarios consistent on the
// Kubernetes and AWS sides. It knows nothing of the CLI.
package lab

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// File and folder names inside the lab folder. Up removes only these when it
// cleans a dirty folder, so a mistaken --dir never loses unrelated files.
const (
	stateFile      = "state.json"
	kubeconfigFile = "kubeconfig"
	envFile        = "env"
)

var ownedEntries = []string{stateFile, kubeconfigFile, envFile, "pki", "etcd", "logs", "run", "exec", "containers", "kwok-stages.yaml"}

// Defaults for the emulated account.
const (
	DefaultRegion  = "us-east-1"
	DefaultAccount = "123456789012"
	dummyKeyID     = "AKIAEKSIRLABDUMMY000"
	dummySecret    = "eksir-lab-dummy-secret"
)

// ErrNotRunning reports a lab folder without a running lab.
var ErrNotRunning = errors.New("no lab running in this folder")

// Options configure Up.
type Options struct {
	// Dir is the lab folder; it is created if missing.
	Dir string
	// Bins overrides binary discovery (FindBinaries) when set.
	Bins *Binaries
	// Progress, if set, receives one line per step.
	Progress func(string)
	// Timeout bounds the whole start-up; zero means 2 minutes.
	Timeout time.Duration
}

// State is what a running lab records in <dir>/state.json.
type State struct {
	Dir         string    `json:"dir"`
	Kubeconfig  string    `json:"kubeconfig"`
	EnvFile     string    `json:"envFile"`
	APIServer   string    `json:"apiServer"`
	AWSEndpoint string    `json:"awsEndpoint"`
	Region      string    `json:"region"`
	Account     string    `json:"account"`
	StartedAt   time.Time `json:"startedAt"`
	ReadyAfter  string    `json:"readyAfter"`
	Procs       []Proc    `json:"processes"`
	// PodProcesses are the real processes seeds started for suspect pods.
	PodProcesses []PodProcess `json:"podProcesses,omitempty"`
}

// Env returns the variables the env file exports, as KEY=VALUE.
func (s *State) Env() []string {
	return []string{
		"KUBECONFIG=" + s.Kubeconfig,
		"AWS_ENDPOINT_URL=" + s.AWSEndpoint,
		"AWS_REGION=" + s.Region,
		"AWS_DEFAULT_REGION=" + s.Region,
		"AWS_ACCESS_KEY_ID=" + dummyKeyID,
		"AWS_SECRET_ACCESS_KEY=" + dummySecret,
		"EKSIR_LAB_DIR=" + s.Dir,
	}
}

// Load reads the state of the lab in dir.
func Load(dir string) (*State, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(abs, stateFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", abs, ErrNotRunning)
	}
	if err != nil {
		return nil, fmt.Errorf("read lab state: %w", err)
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("parse %s: %w", filepath.Join(abs, stateFile), err)
	}
	return &s, nil
}

func (s *State) save() error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(s.Dir, stateFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("write lab state: %w", err)
	}
	return os.Rename(tmp, filepath.Join(s.Dir, stateFile))
}

// Up starts a lab in o.Dir and returns once every component is ready. If the
// folder holds a previous lab, its recorded processes are stopped and its
// files removed first. On failure, whatever was started is stopped again.
func Up(ctx context.Context, o Options) (st *State, err error) {
	progress := o.Progress
	if progress == nil {
		progress = func(string) {}
	}
	timeout := o.Timeout
	if timeout == 0 {
		timeout = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	began := time.Now()

	var bins Binaries
	if o.Bins != nil {
		bins = *o.Bins
	} else if bins, err = FindBinaries(); err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, err
	}
	if err := cleanDirty(ctx, dir, progress); err != nil {
		return nil, err
	}
	for _, d := range []string{"run", "logs", "etcd", "containers", "exec/bin", "exec/node", "exec/pod"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, fmt.Errorf("create lab folder: %w", err)
		}
	}
	st = &State{Dir: dir, Region: DefaultRegion, Account: DefaultAccount, StartedAt: began.UTC(),
		Kubeconfig: filepath.Join(dir, kubeconfigFile), EnvFile: filepath.Join(dir, envFile)}
	defer func() {
		if err != nil {
			// Stop what started even when ctx is what failed.
			sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			stopAll(sctx, st.Procs)
			scancel()
		}
	}()

	certs, err := writePKI(filepath.Join(dir, "pki"))
	if err != nil {
		return st, err
	}
	ports, err := freePorts(5)
	if err != nil {
		return st, err
	}
	etcdPort, peerPort, apiPort, kwokPort, motoPort := ports[0], ports[1], ports[2], ports[3], ports[4]
	st.APIServer = "https://127.0.0.1:" + strconv.Itoa(apiPort)
	st.AWSEndpoint = "http://127.0.0.1:" + strconv.Itoa(motoPort)

	// moto is independent of the Kubernetes side: start it first and check it
	// last, so its Python start-up overlaps with etcd and the API server.
	progress("starting moto on " + st.AWSEndpoint)
	// AWS managed policies (AmazonEKSWorkerNodePolicy, ...) exist in moto only
	// when it loads them; seeding attaches them as EKS node groups do.
	moto, err := startProc(dir, "moto", bins.Moto, []string{"-H", "127.0.0.1", "-p", strconv.Itoa(motoPort)},
		[]string{"MOTO_IAM_LOAD_MANAGED_POLICIES=true"})
	if err != nil {
		return st, err
	}
	moto.Port = motoPort
	st.Procs = append(st.Procs, *moto)

	etcdURL := "http://127.0.0.1:" + strconv.Itoa(etcdPort)
	progress("starting etcd on " + etcdURL)
	etcd, err := startProc(dir, "etcd", bins.Etcd, []string{
		"--name", "eksir-lab",
		"--data-dir", filepath.Join(dir, "etcd"),
		"--listen-client-urls", etcdURL, "--advertise-client-urls", etcdURL,
		"--listen-peer-urls", "http://127.0.0.1:" + strconv.Itoa(peerPort),
		"--initial-advertise-peer-urls", "http://127.0.0.1:" + strconv.Itoa(peerPort),
		"--initial-cluster", "eksir-lab=http://127.0.0.1:" + strconv.Itoa(peerPort),
		// A lab holds nothing worth an fsync; this halves write latency.
		"--unsafe-no-fsync",
		"--log-level", "warn",
	}, nil)
	if err != nil {
		return st, err
	}
	etcd.Port = etcdPort
	st.Procs = append(st.Procs, *etcd)
	if err := waitHTTP(ctx, *etcd, http.DefaultClient, etcdURL+"/health", `"health":"true"`); err != nil {
		return st, err
	}

	progress("starting kube-apiserver on " + st.APIServer)
	api, err := startProc(dir, "kube-apiserver", bins.APIServer, []string{
		"--etcd-servers=" + etcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(apiPort),
		"--cert-dir=" + filepath.Join(dir, "pki"),
		"--tls-cert-file=" + certs.ServingCert,
		"--tls-private-key-file=" + certs.ServingKey,
		"--client-ca-file=" + certs.CA,
		"--service-account-issuer=" + st.APIServer,
		"--service-account-key-file=" + certs.SAPub,
		"--service-account-signing-key-file=" + certs.SAKey,
		"--service-cluster-ip-range=10.0.0.0/24",
		"--authorization-mode=RBAC",
		"--allow-privileged=true",
		// No controller-manager runs to mint tokens, so the ServiceAccount
		// admission plugin would reject pods naming a service account.
		"--disable-admission-plugins=ServiceAccount",
		"--kubelet-preferred-address-types=InternalIP",
		"--v=1",
	}, nil)
	if err != nil {
		return st, err
	}
	api.Port = apiPort
	st.Procs = append(st.Procs, *api)
	adminHTTP, err := adminClient(certs)
	if err != nil {
		return st, err
	}
	if err := waitHTTP(ctx, *api, adminHTTP, st.APIServer+"/readyz", "ok"); err != nil {
		return st, err
	}
	if err := writeKubeconfig(st.Kubeconfig, st.APIServer, certs); err != nil {
		return st, err
	}

	progress("applying kwok CRDs (Logs, ClusterLogs, Exec, ClusterExec)")
	if err := applyKwokCRDs(ctx, st.Kubeconfig); err != nil {
		return st, err
	}
	stages, err := writeKwokAssets(dir)
	if err != nil {
		return st, err
	}
	kwokAddr := "127.0.0.1:" + strconv.Itoa(kwokPort)
	progress("starting kwok on " + kwokAddr)
	// The exec shims come first on kwok's PATH: kwok runs exec requests as
	// local processes, and the shims answer the collector commands (ps, ss,
	// memory dump) with the seeded scenario's view of the node.
	kwok, err := startProc(dir, "kwok", bins.Kwok, []string{
		"--kubeconfig=" + st.Kubeconfig,
		"--manage-all-nodes=true",
		"--config=" + stages,
		"--node-ip=127.0.0.1",
		"--node-name=localhost",
		"--node-port=" + strconv.Itoa(kwokPort),
		"--server-address=" + kwokAddr,
		"--enable-crds=Logs,ClusterLogs,Exec,ClusterExec",
	}, []string{"PATH=" + filepath.Join(dir, "exec", "bin") + string(os.PathListSeparator) + os.Getenv("PATH")})
	if err != nil {
		return st, err
	}
	kwok.Port = kwokPort
	st.Procs = append(st.Procs, *kwok)
	if err := waitHTTP(ctx, *kwok, http.DefaultClient, "http://"+kwokAddr+"/healthz", "ok"); err != nil {
		return st, err
	}
	// moto answers 404 on / but any HTTP answer means it serves.
	if err := waitHTTP(ctx, *moto, http.DefaultClient, st.AWSEndpoint+"/moto-api/", ""); err != nil {
		return st, err
	}
	if err := writeEnvFile(st); err != nil {
		return st, err
	}
	st.ReadyAfter = time.Since(began).Round(time.Millisecond).String()
	if err := st.save(); err != nil {
		return st, err
	}
	progress("lab ready after " + st.ReadyAfter)
	return st, nil
}

// cleanDirty stops a previous lab's recorded processes and removes its files.
func cleanDirty(ctx context.Context, dir string, progress func(string)) error {
	if old, err := Load(dir); err == nil {
		progress("stopping the previous lab in " + dir)
		for _, p := range old.PodProcesses {
			if err := p.Stop(ctx); err != nil {
				return fmt.Errorf("clean previous lab: %w", err)
			}
		}
		if err := stopAll(ctx, old.Procs); err != nil {
			return fmt.Errorf("clean previous lab: %w", err)
		}
	}
	for _, e := range ownedEntries {
		if err := os.RemoveAll(filepath.Join(dir, e)); err != nil {
			return fmt.Errorf("clean previous lab: %w", err)
		}
	}
	return nil
}

// stopAll stops processes in reverse start order, returning the first error
// but trying every process.
func stopAll(ctx context.Context, procs []Proc) error {
	var first error
	for i := len(procs) - 1; i >= 0; i-- {
		if err := procs[i].stop(ctx, 10*time.Second); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// DownResult lists what Down stopped.
type DownResult struct {
	Dir     string `json:"dir"`
	Stopped []Proc `json:"stopped"`
}

// Down stops exactly the processes recorded in dir's state (by pid and start
// time, never by name) and removes the state file. Logs, kubeconfig and
// data stay for inspection until the next Up cleans them.
func Down(ctx context.Context, dir string) (*DownResult, error) {
	st, err := Load(dir)
	if err != nil {
		return nil, err
	}
	res := &DownResult{Dir: st.Dir}
	for _, p := range st.PodProcesses {
		if err := p.Stop(ctx); err != nil {
			return res, fmt.Errorf("stop the pod process %d: %w", p.PodPID, err)
		}
		res.Stopped = append(res.Stopped, p.Proc)
	}
	var g errgroup.Group
	// Stop kwok and the API server before etcd (clean shutdown), moto in
	// parallel.
	g.Go(func() error { return stopAll(ctx, filter(st.Procs, "moto")) })
	g.Go(func() error { return stopAll(ctx, without(st.Procs, "moto")) })
	if err := g.Wait(); err != nil {
		return res, err
	}
	for _, p := range st.Procs {
		res.Stopped = append(res.Stopped, p)
		_ = os.Remove(filepath.Join(st.Dir, "run", p.Name+".pid"))
	}
	if err := os.Remove(filepath.Join(st.Dir, stateFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return res, fmt.Errorf("remove lab state: %w", err)
	}
	return res, nil
}

func filter(ps []Proc, name string) []Proc {
	var out []Proc
	for _, p := range ps {
		if p.Name == name {
			out = append(out, p)
		}
	}
	return out
}

func without(ps []Proc, name string) []Proc {
	var out []Proc
	for _, p := range ps {
		if p.Name != name {
			out = append(out, p)
		}
	}
	return out
}

// ComponentStatus is one line of Status.
type ComponentStatus struct {
	Name    string `json:"name"`
	PID     int    `json:"pid"`
	Port    int    `json:"port,omitempty"`
	Running bool   `json:"running"`
	Log     string `json:"log"`
}

// StatusReport describes a lab folder.
type StatusReport struct {
	Dir         string            `json:"dir"`
	Running     bool              `json:"running"`
	APIServer   string            `json:"apiServer"`
	AWSEndpoint string            `json:"awsEndpoint"`
	Kubeconfig  string            `json:"kubeconfig"`
	EnvFile     string            `json:"envFile"`
	StartedAt   time.Time         `json:"startedAt"`
	Components  []ComponentStatus `json:"components"`
}

// Status reports whether each recorded process still runs. Running is true
// only when all of them do.
func Status(_ context.Context, dir string) (*StatusReport, error) {
	st, err := Load(dir)
	if err != nil {
		return nil, err
	}
	r := &StatusReport{Dir: st.Dir, Running: true, APIServer: st.APIServer, AWSEndpoint: st.AWSEndpoint,
		Kubeconfig: st.Kubeconfig, EnvFile: st.EnvFile, StartedAt: st.StartedAt}
	for _, p := range st.Procs {
		alive := p.Alive()
		r.Running = r.Running && alive
		r.Components = append(r.Components, ComponentStatus{Name: p.Name, PID: p.PID, Port: p.Port, Running: alive, Log: p.Log})
	}
	return r, nil
}

// waitHTTP polls url until it answers 200 with want in the body. It fails
// at once, with the log's last lines, if the process dies meanwhile.
func waitHTTP(ctx context.Context, p Proc, c *http.Client, url, want string) error {
	err := poll(ctx, func(ctx context.Context) (bool, error) {
		if !p.Alive() {
			return false, &permanentError{fmt.Errorf("%s exited during start-up; last lines of %s:\n%s", p.Name, p.Log, logTail(p.Log, 15))}
		}
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(rctx, http.MethodGet, url, nil)
		if err != nil {
			return false, &permanentError{err}
		}
		resp, err := c.Do(req)
		if err != nil {
			return false, err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		if want == "" {
			return true, nil
		}
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
			return false, fmt.Errorf("%s: %s %s", url, resp.Status, strings.TrimSpace(string(body)))
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("wait for %s to be ready (log: %s): %w", p.Name, p.Log, err)
	}
	return nil
}

func adminClient(p *pki) (*http.Client, error) {
	cert, err := tls.X509KeyPair(p.adminCertPEM, p.adminKeyPEM)
	if err != nil {
		return nil, fmt.Errorf("load admin certificate: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(p.caPEM)
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12,
	}}}, nil
}

func writeKubeconfig(path, server string, p *pki) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["eksir-lab"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: p.caPEM}
	cfg.AuthInfos["eksir-lab-admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: p.adminCertPEM, ClientKeyData: p.adminKeyPEM}
	cfg.Contexts["eksir-lab"] = &clientcmdapi.Context{Cluster: "eksir-lab", AuthInfo: "eksir-lab-admin", Namespace: "default"}
	cfg.CurrentContext = "eksir-lab"
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return fmt.Errorf("write kubeconfig: %w", err)
	}
	return os.Chmod(path, 0o600)
}

func writeEnvFile(st *State) error {
	var b strings.Builder
	b.WriteString("# eksir lab environment: source this file (. " + st.EnvFile + ")\n")
	for _, kv := range st.Env() {
		k, v, _ := strings.Cut(kv, "=")
		fmt.Fprintf(&b, "export %s=%s\n", k, shellQuote(v))
	}
	return os.WriteFile(st.EnvFile, []byte(b.String()), 0o600)
}

// shellQuote single-quotes s for POSIX shells.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
