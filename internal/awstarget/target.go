// Package awstarget finds the AWS side of Kubernetes targets: the EC2
// instance behind a node and the AWS credentials a pod carries. Actions use
// it in Plan, before any change, and the playbook engine uses it to derive
// inputs, so both read a target the same way.
package awstarget

import (
	"errors"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/eksir/eksir/action"
)

// FargateLabel is the label EKS puts on Fargate nodes; its value is "fargate".
const FargateLabel = "eks.amazonaws.com/compute-type"

// ParseProviderID splits an EC2 node's spec.providerID,
// aws:///ZONE/INSTANCE-ID, into zone and instance ID.
func ParseProviderID(id string) (az, instanceID string, err error) {
	rest, ok := strings.CutPrefix(id, "aws:///")
	if !ok {
		return "", "", fmt.Errorf("providerID %q: want aws:///<zone>/<instance-id>", id)
	}
	az, instanceID, ok = strings.Cut(rest, "/")
	if !ok || az == "" || !strings.HasPrefix(instanceID, "i-") || strings.Contains(instanceID, "/") {
		return "", "", fmt.Errorf("providerID %q: want aws:///<zone>/<instance-id>", id)
	}
	return az, instanceID, nil
}

// ErrNoEC2Instance is wrapped, beside action.ErrBadInput, by NodeInstance
// when no EC2 instance stands behind a node (Fargate, no provider ID, or
// one that is not EC2's): a caller that runs on any pod (triage) can tell
// this from a failure and record the instance as not collected.
var ErrNoEC2Instance = errors.New("no EC2 instance")

// IsFargate reports whether n is an EKS Fargate node. The provider ID
// decides: an EC2 instance's (aws:///ZONE/i-...) is never Fargate, a
// Fargate task's is aws:///ZONE/TASK/fargate-NAME. The compute-type label
// counts only on a node without a provider ID: a kubelet may set its own
// node's eks.amazonaws.com labels (NodeRestriction guards the kubernetes.io
// ones), and a compromised EC2 node that called itself Fargate would escape
// isolation and collection; its provider ID cannot be changed once set.
func IsFargate(n *corev1.Node) bool {
	pid := n.Spec.ProviderID
	if pid == "" {
		return n.Labels[FargateLabel] == "fargate"
	}
	if _, _, err := ParseProviderID(pid); err == nil {
		return false
	}
	rest, ok := strings.CutPrefix(pid, "aws:///")
	if !ok {
		return false
	}
	parts := strings.Split(rest, "/")
	return len(parts) == 3 && parts[0] != "" && parts[1] != "" && strings.HasPrefix(parts[2], "fargate-") && len(parts[2]) > len("fargate-")
}

// NodeInstance returns the EC2 instance ID behind a node. A node without a
// provider ID, one that is not EC2, or a Fargate node (whose provider ID
// names a Fargate task, and whose host AWS runs) is bad input wrapping
// ErrNoEC2Instance: there is no instance to isolate, protect or snapshot.
func NodeInstance(n *corev1.Node) (string, error) {
	pid := n.Spec.ProviderID
	if IsFargate(n) {
		return "", fmt.Errorf("%w: node %s runs on AWS Fargate (spec.providerID %q): %w to act on; contain its pods instead (pod-compromise)",
			action.ErrBadInput, n.Name, pid, ErrNoEC2Instance)
	}
	if pid == "" {
		return "", fmt.Errorf("%w: node %s has no spec.providerID: %w known; give the instance ID (--instance) or check the node with 'kubectl get node %s -o jsonpath={.spec.providerID}'",
			action.ErrBadInput, n.Name, ErrNoEC2Instance, n.Name)
	}
	_, id, err := ParseProviderID(pid)
	if err != nil {
		return "", fmt.Errorf("%w: node %s: spec.providerID: %v; it is not an EC2 instance (%w behind it)", action.ErrBadInput, n.Name, err, ErrNoEC2Instance)
	}
	return id, nil
}

// Environment variables the EKS webhooks inject into pods.
const (
	// IRSA (the pod identity webhook, driven by the service account's
	// role-arn annotation).
	EnvRoleARN          = "AWS_ROLE_ARN"
	EnvWebIdentityToken = "AWS_WEB_IDENTITY_TOKEN_FILE"
	RoleARNAnnotation   = "eks.amazonaws.com/role-arn"
	// EKS Pod Identity (the agent on 169.254.170.23).
	EnvContainerCredsURI = "AWS_CONTAINER_CREDENTIALS_FULL_URI"
)

// Credential kinds a pod may hold.
const (
	IRSA        = "irsa"
	PodIdentity = "pod-identity"
)

// PodCredentials is what AWS credentials a pod can obtain.
type PodCredentials struct {
	// Kinds lists IRSA and/or PodIdentity; empty when the pod has no AWS
	// credentials of its own (it may still reach the node's, through IMDS).
	Kinds []string
	// RoleARN is the IRSA role: the pod's AWS_ROLE_ARN as injected at
	// creation, which is what its token can assume even if the service
	// account's annotation changed since; else the annotation.
	RoleARN string
	// ServiceAccount is NAMESPACE/NAME of the pod's service account.
	ServiceAccount string
}

// Has reports whether the pod holds credentials of kind k.
func (c PodCredentials) Has(k string) bool {
	for _, x := range c.Kinds {
		if x == k {
			return true
		}
	}
	return false
}

// Kind is the credential kinds joined with "+", "" for none: the value of
// the playbook attribute pod.aws_credentials.
func (c PodCredentials) Kind() string { return strings.Join(c.Kinds, "+") }

// ReadPodCredentials reads a pod's AWS credentials from its spec (the env
// the webhooks injected) and its service account (sa may be nil when it
// does not exist any more).
func ReadPodCredentials(p *corev1.Pod, sa *corev1.ServiceAccount) PodCredentials {
	name := p.Spec.ServiceAccountName
	if name == "" {
		name = "default"
	}
	out := PodCredentials{ServiceAccount: p.Namespace + "/" + name}
	var webIdentity, containerCreds bool
	for _, cs := range [][]corev1.Container{p.Spec.InitContainers, p.Spec.Containers} {
		for _, c := range cs {
			for _, e := range c.Env {
				switch e.Name {
				case EnvRoleARN:
					if out.RoleARN == "" {
						out.RoleARN = e.Value
					}
				case EnvWebIdentityToken:
					webIdentity = true
				case EnvContainerCredsURI:
					containerCreds = true
				}
			}
		}
	}
	if out.RoleARN == "" && sa != nil {
		out.RoleARN = sa.Annotations[RoleARNAnnotation]
	}
	if out.RoleARN != "" && (webIdentity || sa != nil && sa.Annotations[RoleARNAnnotation] != "") {
		out.Kinds = append(out.Kinds, IRSA)
	}
	if containerCreds {
		out.Kinds = append(out.Kinds, PodIdentity)
	}
	return out
}
