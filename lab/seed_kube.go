package lab

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	_ "embed"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sync/errgroup"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/eksir/eksir/internal/kube"
)

// seedConcurrency bounds parallel API calls while seeding: enough to hide
// request latency, few enough not to trip the API server's priority and
// fairness limits on 2 cores.
const seedConcurrency = 32

var (
	gvrLogs         = schema.GroupVersionResource{Group: "kwok.x-k8s.io", Version: "v1alpha1", Resource: "logs"}
	gvrClusterLogs  = schema.GroupVersionResource{Group: "kwok.x-k8s.io", Version: "v1alpha1", Resource: "clusterlogs"}
	gvrExecs        = schema.GroupVersionResource{Group: "kwok.x-k8s.io", Version: "v1alpha1", Resource: "execs"}
	gvrClusterExecs = schema.GroupVersionResource{Group: "kwok.x-k8s.io", Version: "v1alpha1", Resource: "clusterexecs"}
)

// kubeWorld is what seeding created in the cluster.
type kubeWorld struct {
	SuspectPod, SuspectNode, PV, PVC string
	Nodes, Pods                      int
}

type kubeSeeder struct {
	c      *kube.Clients
	sc     Scenario
	aws    *awsWorld
	deps   []deployment
	prefix string
	dir    string // the lab folder (logs and exec files live there)
	nodes  []string
}

func (k *kubeSeeder) ns() string { return k.prefix + k.sc.Namespace }

func (k *kubeSeeder) seed(ctx context.Context) (*kubeWorld, error) {
	w := &kubeWorld{}
	for _, in := range k.aws.Instances {
		k.nodes = append(k.nodes, nodeName(k.prefix, in.PrivateIP, k.aws.Region))
	}
	if err := k.writeNodeFiles(); err != nil {
		return nil, err
	}

	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(seedConcurrency)
	for i, in := range k.aws.Instances {
		g.Go(func() error { return k.createNode(gctx, k.nodes[i], in) })
	}
	nss := map[string]bool{}
	for _, d := range k.deps {
		nss[d.Namespace] = true
	}
	for ns := range nss {
		g.Go(func() error { return k.createNamespace(gctx, ns) })
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	// The suspect namespace's extras must exist before its pods reference them.
	if err := k.seedSuspectNamespace(ctx, w); err != nil {
		return nil, err
	}
	g, gctx = errgroup.WithContext(ctx)
	g.SetLimit(seedConcurrency)
	for _, d := range k.deps {
		g.Go(func() error { return k.createDeployment(gctx, d) })
		w.Pods += len(d.Pods)
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if err := k.seedKwokObjects(ctx); err != nil {
		return nil, err
	}
	w.SuspectPod = k.deps[0].Pods[0]
	w.SuspectNode = k.nodes[k.deps[0].Nodes[0]]
	w.Nodes = len(k.nodes)
	return w, nil
}

func (k *kubeSeeder) createNode(ctx context.Context, name string, in instance) error {
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
			"kubernetes.io/hostname":            name,
			"kubernetes.io/os":                  "linux",
			"kubernetes.io/arch":                "amd64",
			"topology.kubernetes.io/region":     k.aws.Region,
			"topology.kubernetes.io/zone":       in.AZ,
			"topology.ebs.csi.aws.com/zone":     in.AZ,
			"node.kubernetes.io/instance-type":  in.Type,
			"eks.amazonaws.com/nodegroup":       "ng-default",
			"eks.amazonaws.com/capacityType":    "ON_DEMAND",
			"eks.amazonaws.com/nodegroup-image": nodeAMI,
			"alpha.eksctl.io/cluster-name":      k.aws.Cluster,
			"type":                              "kwok",
		}, Annotations: map[string]string{
			// kwok manages every node here (--manage-all-nodes); the
			// annotation documents that this node is simulated.
			"kwok.x-k8s.io/node":                   "fake",
			"alpha.kubernetes.io/provided-node-ip": in.PrivateIP,
			"eksir.io/lab-private-ip":              in.PrivateIP,
		}},
		Spec: corev1.NodeSpec{ProviderID: providerID(in.AZ, in.ID)},
	}
	_, err := k.c.Typed.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("create node %s: %w", name, err)
	}
	return nil
}

func (k *kubeSeeder) createNamespace(ctx context.Context, ns string) error {
	_, err := k.c.Typed.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns,
		Labels: map[string]string{"kubernetes.io/metadata.name": ns}}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", ns, err)
	}
	return nil
}

// seedSuspectNamespace creates the suspect's ServiceAccount (IRSA), RBAC,
// storage (PVC bound to a PV naming the real EBS volume), Services and the
// pre-existing NetworkPolicies.
func (k *kubeSeeder) seedSuspectNamespace(ctx context.Context, w *kubeWorld) error {
	cs, ns, sc := k.c.Typed, k.ns(), k.sc
	if _, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{
		Name: sc.ServiceAccount, Annotations: map[string]string{"eks.amazonaws.com/role-arn": k.aws.IRSARoleArn}}}, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create service account: %w", err)
	}
	if _, err := cs.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: sc.App},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"configmaps", "secrets"}, Verbs: []string{"get", "list", "watch"}},
			{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list"}},
		}}, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create role: %w", err)
	}
	if _, err := cs.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: sc.App},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: sc.App},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: sc.ServiceAccount, Namespace: ns}}}, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create role binding: %w", err)
	}
	// A cluster-wide read binding: the kind of over-grant responders find.
	crb := k.prefix + sc.App + "-view"
	if _, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: crb},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "view"},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: sc.ServiceAccount, Namespace: ns}}}, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create cluster role binding: %w", err)
	}

	// Storage: the StorageClass EKS clusters use with the EBS CSI driver.
	_, err := cs.StorageV1().StorageClasses().Create(ctx, &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "gp3"},
		Provisioner: "ebs.csi.aws.com", Parameters: map[string]string{"type": "gp3"},
		VolumeBindingMode: ptr(storagev1.VolumeBindingWaitForFirstConsumer), ReclaimPolicy: ptr(corev1.PersistentVolumeReclaimDelete)}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create storage class: %w", err)
	}
	pvcName := sc.App + "-data"
	size := resource.MustParse("10Gi")
	pvc, err := cs.CoreV1().PersistentVolumeClaims(ns).Create(ctx, &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: pvcName, Annotations: map[string]string{"volume.kubernetes.io/storage-provisioner": "ebs.csi.aws.com"}},
		Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			StorageClassName: ptr("gp3"), Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: size}}},
	}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("create PVC: %w", err)
	}
	pvName := "pvc-" + string(pvc.UID)
	pv, err := cs.CoreV1().PersistentVolumes().Create(ctx, &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: pvName, Annotations: map[string]string{"pv.kubernetes.io/provisioned-by": "ebs.csi.aws.com"}},
		Spec: corev1.PersistentVolumeSpec{
			Capacity: corev1.ResourceList{corev1.ResourceStorage: size}, AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimDelete, StorageClassName: "gp3",
			PersistentVolumeSource: corev1.PersistentVolumeSource{CSI: &corev1.CSIPersistentVolumeSource{
				Driver: "ebs.csi.aws.com", VolumeHandle: k.aws.DataVolume, FSType: "ext4"}},
			ClaimRef: &corev1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1", Namespace: ns, Name: pvcName, UID: pvc.UID},
			NodeAffinity: &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
				MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "topology.ebs.csi.aws.com/zone", Operator: corev1.NodeSelectorOpIn, Values: []string{k.aws.DataVolumeAZ}}}}}}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("create PV: %w", err)
	}
	// No controller-manager runs, so the binding the PV controller would make
	// is written here.
	pv.Status.Phase = corev1.VolumeBound
	if _, err := cs.CoreV1().PersistentVolumes().UpdateStatus(ctx, pv, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("bind PV: %w", err)
	}
	pvc.Spec.VolumeName = pvName
	pvc.Annotations["pv.kubernetes.io/bind-completed"] = "yes"
	if pvc, err = cs.CoreV1().PersistentVolumeClaims(ns).Update(ctx, pvc, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("bind PVC: %w", err)
	}
	pvc.Status = corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound, Capacity: corev1.ResourceList{corev1.ResourceStorage: size},
		AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}}
	if _, err := cs.CoreV1().PersistentVolumeClaims(ns).UpdateStatus(ctx, pvc, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("bind PVC status: %w", err)
	}
	w.PV, w.PVC = pvName, ns+"/"+pvcName

	for _, app := range []string{sc.App, "frontend"} {
		if _, err := cs.CoreV1().Services(ns).Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: app, Labels: map[string]string{"app": app}},
			Spec: corev1.ServiceSpec{Selector: map[string]string{"app": app},
				Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)}}}}, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create service %s: %w", app, err)
		}
	}

	tcp := corev1.ProtocolTCP
	udp := corev1.ProtocolUDP
	port8080 := intstr.FromInt32(8080)
	port53 := intstr.FromInt32(53)
	for _, np := range []*networkingv1.NetworkPolicy{
		// Lets the frontend reach the suspect: the reason a deny-all policy
		// added during containment does not cut this traffic on its own
		// (NetworkPolicies are additive).
		{ObjectMeta: metav1.ObjectMeta{Name: "allow-frontend-to-" + sc.App},
			Spec: networkingv1.NetworkPolicySpec{
				PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": sc.App}},
				PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
				Ingress: []networkingv1.NetworkPolicyIngressRule{{
					From:  []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "frontend"}}}},
					Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: &port8080}}}}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "allow-dns-egress"},
			Spec: networkingv1.NetworkPolicySpec{
				PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress},
				Egress: []networkingv1.NetworkPolicyEgressRule{
					{Ports: []networkingv1.NetworkPolicyPort{{Protocol: &udp, Port: &port53}, {Protocol: &tcp, Port: &port53}}},
					{To: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "0.0.0.0/0", Except: []string{"169.254.169.254/32"}}}}},
				}}},
	} {
		if _, err := cs.NetworkingV1().NetworkPolicies(ns).Create(ctx, np, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create network policy %s: %w", np.Name, err)
		}
	}
	return nil
}

// createDeployment writes the owner chain a controller-manager would:
// Deployment → ReplicaSet → Pods, with the pods bound to their nodes
// (there is no scheduler).
func (k *kubeSeeder) createDeployment(ctx context.Context, d deployment) error {
	apps := k.c.Typed.AppsV1()
	labels := map[string]string{"app": d.App}
	podLabels := map[string]string{"app": d.App, "pod-template-hash": d.Hash}
	replicas := int32(len(d.Pods))
	tmpl := k.podTemplate(d, podLabels)
	dep, err := apps.Deployments(d.Namespace).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: d.Name, Labels: labels, Annotations: map[string]string{"deployment.kubernetes.io/revision": "1"}},
		Spec: appsv1.DeploymentSpec{Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: tmpl}},
	}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("create deployment %s/%s: %w", d.Namespace, d.Name, err)
	}
	rsName := d.Name + "-" + d.Hash
	rs, err := apps.ReplicaSets(d.Namespace).Create(ctx, &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: rsName, Labels: podLabels,
			Annotations:     map[string]string{"deployment.kubernetes.io/revision": "1", "deployment.kubernetes.io/desired-replicas": strconv.Itoa(int(replicas))},
			OwnerReferences: []metav1.OwnerReference{owner("apps/v1", "Deployment", dep.Name, dep.UID)}},
		Spec: appsv1.ReplicaSetSpec{Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: podLabels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: podLabels}, Spec: tmpl}},
	}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("create replicaset %s/%s: %w", d.Namespace, rsName, err)
	}
	for i, name := range d.Pods {
		spec := *tmpl.DeepCopy()
		spec.NodeName = k.nodes[d.Nodes[i]]
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: podLabels,
			OwnerReferences: []metav1.OwnerReference{owner("apps/v1", "ReplicaSet", rs.Name, rs.UID)}}, Spec: spec}
		created, err := k.c.Typed.CoreV1().Pods(d.Namespace).Create(ctx, p, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("create pod %s/%s: %w", d.Namespace, name, err)
		}
		lines := k.sc.BenignLog
		if d.Suspect && i == 0 {
			lines = k.sc.SuspectLog
		}
		if err := k.writePodLogs(created, lines); err != nil {
			return err
		}
	}
	// Status as the controllers would report it once kwok marks pods ready.
	dep.Status = appsv1.DeploymentStatus{ObservedGeneration: dep.Generation, Replicas: replicas, UpdatedReplicas: replicas, ReadyReplicas: replicas, AvailableReplicas: replicas}
	if _, err := apps.Deployments(d.Namespace).UpdateStatus(ctx, dep, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update deployment status %s/%s: %w", d.Namespace, d.Name, err)
	}
	rs.Status = appsv1.ReplicaSetStatus{ObservedGeneration: rs.Generation, Replicas: replicas, FullyLabeledReplicas: replicas, ReadyReplicas: replicas, AvailableReplicas: replicas}
	if _, err := apps.ReplicaSets(d.Namespace).UpdateStatus(ctx, rs, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update replicaset status %s/%s: %w", d.Namespace, rsName, err)
	}
	return nil
}

func (k *kubeSeeder) podTemplate(d deployment, labels map[string]string) corev1.PodSpec {
	image := "public.ecr.aws/docker/library/nginx:1.27"
	spec := corev1.PodSpec{
		Containers: []corev1.Container{{Name: d.App, Image: image,
			Ports: []corev1.ContainerPort{{ContainerPort: 8080, Name: "http"}}}},
		// kwok has no kubelet to tolerate; the toleration mirrors what
		// workloads on tainted EKS node groups carry.
		Tolerations: []corev1.Toleration{{Key: "kwok.x-k8s.io/node", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}},
	}
	if !d.Suspect {
		return spec
	}
	sc := k.sc
	c := &spec.Containers[0]
	c.Image = sc.Image
	// What the EKS Pod Identity webhook injects for IRSA.
	c.Env = []corev1.EnvVar{
		{Name: "AWS_ROLE_ARN", Value: k.aws.IRSARoleArn},
		{Name: "AWS_WEB_IDENTITY_TOKEN_FILE", Value: "/var/run/secrets/eks.amazonaws.com/serviceaccount/token"},
		{Name: "AWS_STS_REGIONAL_ENDPOINTS", Value: "regional"},
		{Name: "AWS_REGION", Value: k.aws.Region},
	}
	c.VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/var/lib/" + sc.App}}
	spec.ServiceAccountName = sc.ServiceAccount
	spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
		PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: sc.App + "-data"}}}}
	return spec
}

// seedKwokObjects points kwok's log and exec handlers at the files the lab
// wrote: the suspect pod gets its own (attacker-like) log and exec view, every
// other pod the benign ones.
func (k *kubeSeeder) seedKwokObjects(ctx context.Context) error {
	d := k.deps[0]
	suspect := d.Pods[0]
	logDir := filepath.Join(k.dir, "containers", k.prefix+k.sc.Name)
	var nss []any
	seen := map[string]bool{}
	for _, dd := range k.deps {
		if !seen[dd.Namespace] {
			seen[dd.Namespace] = true
			nss = append(nss, dd.Namespace)
		}
	}
	objs := []struct {
		gvr schema.GroupVersionResource
		obj map[string]any
	}{
		{gvrLogs, map[string]any{"apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "Logs",
			"metadata": map[string]any{"name": suspect, "namespace": d.Namespace},
			"spec":     map[string]any{"logs": []any{map[string]any{"logsFile": filepath.Join(logDir, "suspect.log")}}}}},
		{gvrClusterLogs, map[string]any{"apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "ClusterLogs",
			"metadata": map[string]any{"name": k.prefix + k.sc.Name + "-benign"},
			"spec": map[string]any{"selector": map[string]any{"matchNamespaces": nss},
				"logs": []any{map[string]any{"logsFile": filepath.Join(logDir, "benign.log")}}}}},
		{gvrExecs, map[string]any{"apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "Exec",
			"metadata": map[string]any{"name": suspect, "namespace": d.Namespace},
			"spec": map[string]any{"execs": []any{map[string]any{"local": map[string]any{
				"workDir": k.execView("pod"),
				"envs": []any{map[string]any{"name": "EKSIR_LAB_VIEW", "value": "pod"},
					map[string]any{"name": "TMPDIR", "value": filepath.Join(k.execView("pod"), "tmp")}}}}}}}},
		// No selector: collector pods (created later, in any namespace) get
		// the suspect node's view.
		{gvrClusterExecs, map[string]any{"apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "ClusterExec",
			"metadata": map[string]any{"name": "eksir-lab-node-view"},
			"spec": map[string]any{"execs": []any{map[string]any{"local": map[string]any{
				"workDir": k.execView("node"),
				"envs": []any{map[string]any{"name": "EKSIR_LAB_VIEW", "value": "node"},
					map[string]any{"name": "TMPDIR", "value": filepath.Join(k.execView("node"), "tmp")}}}}}}}},
	}
	for _, o := range objs {
		u := &unstructured.Unstructured{Object: o.obj}
		var err error
		if ns := u.GetNamespace(); ns != "" {
			_, err = k.c.Dynamic.Resource(o.gvr).Namespace(ns).Create(ctx, u, metav1.CreateOptions{})
		} else {
			_, err = k.c.Dynamic.Resource(o.gvr).Create(ctx, u, metav1.CreateOptions{})
		}
		// One node view serves every seed of a lab (collector pods of any
		// namespace match it), so a second seed finds it.
		if err != nil && !(apierrors.IsAlreadyExists(err) && o.gvr == gvrClusterExecs) {
			return fmt.Errorf("create %s %s: %w", u.GetKind(), u.GetName(), err)
		}
	}
	return nil
}

// execView is the folder kwok runs a view's exec requests in: the suspect
// pod's ("pod") or a node's as a collector pod sees it ("node", where host/
// stands for the node's root filesystem mounted at /host).
func (k *kubeSeeder) execView(view string) string { return ExecView(k.dir, k.prefix, view) }

// ExecView is the folder kwok runs a seeded view's exec requests in: "pod"
// for the suspect pod of the seed with that prefix, "node" for any other
// pod (collector pods), whose host/ and checkpoints/ stand for the node's
// root filesystem and kubelet checkpoint folder as a collector pod mounts
// them. kwok matches one cluster-wide exec rule for every collector pod,
// so all seeds of a lab share the node view (their pods' log folders are
// named by namespace, pod and UID, and do not collide).
func ExecView(labDir, prefix, view string) string {
	if view == "node" {
		prefix = ""
	}
	return filepath.Join(labDir, "exec", prefix+view)
}

// writePodLogs lays out a pod's container logs as the kubelet does on an
// EKS node, under the node view's host/: /var/log/pods/<ns>_<pod>_<uid>/
// <container>/0.log, the last rotation uncompressed, older ones gzipped,
// and /var/log/containers/<pod>_<ns>_<container>-<id>.log as an absolute
// symlink to the current file, which resolves only on the node itself.
func (k *kubeSeeder) writePodLogs(p *corev1.Pod, lines []string) error {
	host := filepath.Join(k.execView("node"), "host")
	now := timeNow()
	for _, c := range p.Spec.Containers {
		dir := path.Join("/var/log/pods", p.Namespace+"_"+p.Name+"_"+string(p.UID), c.Name)
		rotated := now.Add(-time.Hour).UTC()
		older := now.Add(-2 * time.Hour).UTC()
		files := map[string][]byte{
			"0.log": []byte(criLines(lines, now)),
			"0.log." + rotated.Format("20060102-150405"): []byte(criLines(lines, rotated)),
		}
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		if _, err := zw.Write([]byte(criLines(lines, older))); err != nil {
			return err
		}
		if err := zw.Close(); err != nil {
			return err
		}
		files["0.log."+older.Format("20060102-150405")+".gz"] = gz.Bytes()
		if err := os.MkdirAll(filepath.Join(host, dir), 0o755); err != nil {
			return err
		}
		for name, body := range files {
			if err := os.WriteFile(filepath.Join(host, dir, name), body, 0o644); err != nil {
				return fmt.Errorf("write pod log %s: %w", name, err)
			}
		}
		links := filepath.Join(host, "var/log/containers")
		if err := os.MkdirAll(links, 0o755); err != nil {
			return err
		}
		link := filepath.Join(links, fmt.Sprintf("%s_%s_%s-%x.log", p.Name, p.Namespace, c.Name, sha256.Sum256([]byte(string(p.UID)+c.Name))))
		if err := os.Symlink(path.Join(dir, "0.log"), link); err != nil && !os.IsExist(err) {
			return fmt.Errorf("link %s: %w", link, err)
		}
	}
	return nil
}

// The node's journal: a real journal file built by systemd-journal-remote
// (assets/journal/generate.sh) with kubelet and containerd entries, and
// the machine ID its header names.
//
//go:embed assets/journal/system.journal.zst
var nodeJournal []byte

const nodeMachineID = "ec2b3c1d9a8f4e6b8c7d6e5f4a3b2c1d"

// writeNodeJournal puts the journal where an Amazon Linux 2023 node keeps
// it: /var/log/journal/<machine-id>/system.journal under the node view's
// host/.
func (k *kubeSeeder) writeNodeJournal() error {
	d := filepath.Join(k.execView("node"), "host", "var/log/journal", nodeMachineID)
	if err := os.MkdirAll(d, 0o755); err != nil {
		return err
	}
	zr, err := zstd.NewReader(bytes.NewReader(nodeJournal))
	if err != nil {
		return err
	}
	defer zr.Close()
	f, err := os.CreateTemp(d, ".system.journal-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := io.Copy(f, zr); err != nil {
		f.Close()
		return fmt.Errorf("write the node journal: %w", err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), filepath.Join(d, "system.journal"))
}

// writeNodeFiles writes the CRI-format log files and the exec views
// (process list, sockets, memory image) the kwok objects point at.
func (k *kubeSeeder) writeNodeFiles() error {
	now := timeNow()
	logDir := filepath.Join(k.dir, "containers", k.prefix+k.sc.Name)
	files := map[string]string{
		filepath.Join(logDir, "suspect.log"): criLines(k.sc.SuspectLog, now),
		filepath.Join(logDir, "benign.log"):  criLines(k.sc.BenignLog, now),
	}
	if err := k.writeNodeJournal(); err != nil {
		return err
	}
	suspectNode := k.nodes[0]
	for view, ps := range map[string][2]string{"node": {k.sc.NodePS, k.sc.NodeSS}, "pod": {k.sc.PodPS, k.sc.PodSS}} {
		d := k.execView(view)
		if err := os.MkdirAll(filepath.Join(d, "tmp"), 0o700); err != nil {
			return err
		}
		// The scenario texts use 10.0.1.10 for the suspect node's address.
		ip := k.aws.Instances[0].PrivateIP
		files[filepath.Join(d, "ps.txt")] = ps[0]
		files[filepath.Join(d, "ss.txt")] = strings.ReplaceAll(ps[1], "10.0.1.10", ip)
		files[filepath.Join(d, "hostname.txt")] = suspectNode + "\n"
		files[filepath.Join(d, "uname.txt")] = "Linux " + suspectNode + " 6.1.112-124.190.amzn2023.x86_64 #1 SMP x86_64 GNU/Linux\n"
		files[filepath.Join(d, "lsmod.txt")] = "Module                  Size  Used by\nxt_conntrack           16384  4\nnf_nat                 57344  3\noverlay               200704  12\n"
		files[filepath.Join(d, "crictl.txt")] = fmt.Sprintf("CONTAINER      IMAGE   CREATED        STATE    NAME   POD\n3f9c2a1b7d4e   %s   2 hours ago    Running  %s  %s\n", k.sc.Image, k.sc.App, k.deps[0].Pods[0])
		files[filepath.Join(d, "memory.img")] = string(memoryImage(k.sc, k.aws, view))
		files[filepath.Join(d, "journal.txt")] = fmt.Sprintf("%s %s kubelet[2101]: I1125 kubelet.go:2468] \"SyncLoop ADD\" source=\"api\" pods=[\"%s/%s\"]\n",
			now.UTC().Format(time.RFC3339), suspectNode, k.ns(), k.deps[0].Pods[0])
	}
	for path, body := range files {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	return nil
}

func owner(apiVersion, kind, name string, uid types.UID) metav1.OwnerReference {
	return metav1.OwnerReference{APIVersion: apiVersion, Kind: kind, Name: name, UID: uid,
		Controller: ptr(true), BlockOwnerDeletion: ptr(true)}
}

func ptr[T any](v T) *T { return &v }
