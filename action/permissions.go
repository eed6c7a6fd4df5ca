package action

import (
	"encoding/json"
	"sort"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// IAMPolicy returns a least-privilege IAM policy document allowing exactly
// the IAM actions the specs declare, one statement per action kind so that
// a reviewer sees collection and containment apart.
func IAMPolicy(specs []Spec) ([]byte, error) {
	type statement struct {
		Sid      string   `json:"Sid"`
		Effect   string   `json:"Effect"`
		Action   []string `json:"Action"`
		Resource string   `json:"Resource"`
	}
	byKind := map[Kind]map[string]bool{}
	for _, s := range specs {
		for _, a := range s.Permissions.IAM {
			if byKind[s.Kind] == nil {
				byKind[s.Kind] = map[string]bool{}
			}
			byKind[s.Kind][a] = true
		}
	}
	doc := struct {
		Version   string      `json:"Version"`
		Statement []statement `json:"Statement"`
	}{Version: "2012-10-17", Statement: []statement{}}
	for _, k := range []Kind{Collect, Contain} {
		if len(byKind[k]) == 0 {
			continue
		}
		doc.Statement = append(doc.Statement, statement{
			Sid: "Eksir" + strings.ToUpper(string(k[:1])) + string(k[1:]), Effect: "Allow", Action: sortedSet(byKind[k]), Resource: "*",
		})
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	return append(b, '\n'), err
}

// ClusterRole returns a ClusterRole granting exactly the Kubernetes
// permissions the specs declare, merged per API group and resource.
func ClusterRole(name string, specs []Spec) *rbacv1.ClusterRole {
	type key struct{ group, resource string }
	verbs := map[key]map[string]bool{}
	for _, s := range specs {
		for _, r := range s.Permissions.Kube {
			for _, g := range r.APIGroups {
				for _, res := range r.Resources {
					k := key{g, res}
					if verbs[k] == nil {
						verbs[k] = map[string]bool{}
					}
					for _, v := range r.Verbs {
						verbs[k][v] = true
					}
				}
			}
		}
	}
	keys := make([]key, 0, len(verbs))
	for k := range verbs {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].group != keys[j].group {
			return keys[i].group < keys[j].group
		}
		return keys[i].resource < keys[j].resource
	})
	role := &rbacv1.ClusterRole{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app.kubernetes.io/managed-by": "eksir"}},
	}
	for _, k := range keys {
		role.Rules = append(role.Rules, rbacv1.PolicyRule{APIGroups: []string{k.group}, Resources: []string{k.resource}, Verbs: sortedSet(verbs[k])})
	}
	return role
}

func sortedSet(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
