package action

import (
	"encoding/json"
	"slices"
	"sort"
	"strconv"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// IAMPolicy returns a least-privilege IAM policy document allowing exactly
// the IAM permissions the specs declare. Actions sharing a kind, resources
// and conditions are merged into one statement, and collection and
// containment never share one, so a reviewer sees them apart.
func IAMPolicy(specs []Spec) ([]byte, error) {
	type statement struct {
		Sid       string                         `json:"Sid"`
		Effect    string                         `json:"Effect"`
		Action    []string                       `json:"Action"`
		Resource  any                            `json:"Resource"`
		Condition map[string]map[string][]string `json:"Condition,omitempty"`
	}
	type group struct {
		kind       Kind
		resources  []string
		conditions map[string]map[string][]string
		actions    map[string]bool
	}
	groups := map[string]*group{}
	var keys []string
	for _, s := range specs {
		for _, p := range s.Permissions.IAM {
			if len(p.Actions) == 0 {
				continue // a statement without actions is not valid IAM
			}
			res := slices.Clone(p.Resources)
			if len(res) == 0 {
				res = []string{"*"}
			}
			sort.Strings(res)
			cond, _ := json.Marshal(p.Conditions) // map keys marshal sorted
			k := string(s.Kind) + "\x00" + strings.Join(res, ",") + "\x00" + string(cond)
			g, ok := groups[k]
			if !ok {
				g = &group{kind: s.Kind, resources: res, conditions: p.Conditions, actions: map[string]bool{}}
				groups[k] = g
				keys = append(keys, k)
			}
			for _, a := range p.Actions {
				g.actions[a] = true
			}
		}
	}
	kindRank := map[Kind]int{Collect: 0, Contain: 1}
	sort.Slice(keys, func(i, j int) bool {
		a, b := groups[keys[i]], groups[keys[j]]
		if a.kind != b.kind {
			return kindRank[a.kind] < kindRank[b.kind]
		}
		return keys[i] < keys[j]
	})
	doc := struct {
		Version   string      `json:"Version"`
		Statement []statement `json:"Statement"`
	}{Version: "2012-10-17", Statement: []statement{}}
	perKind := map[Kind]int{}
	for _, k := range keys {
		g := groups[k]
		perKind[g.kind]++
		sid := "Eksir" + strings.ToUpper(string(g.kind[:1])) + string(g.kind[1:])
		if n := perKind[g.kind]; n > 1 {
			sid += strconv.Itoa(n)
		}
		var res any = g.resources
		if len(g.resources) == 1 {
			res = g.resources[0]
		}
		doc.Statement = append(doc.Statement, statement{Sid: sid, Effect: "Allow", Action: sortedSet(g.actions), Resource: res, Condition: g.conditions})
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	return append(b, '\n'), err
}

// IAMAllows reports whether some IAM permission of specs names iamAction
// ("ec2:DescribeInstances"), matching as IAM does: case-insensitively, with
// '*' for any run of characters and '?' for one. Resources and conditions
// are not weighed: it answers whether the generated policy can allow the
// call at all, the check a recorded call needs.
func IAMAllows(specs []Spec, iamAction string) bool {
	for _, s := range specs {
		for _, p := range s.Permissions.IAM {
			for _, a := range p.Actions {
				if iamMatch(strings.ToLower(a), strings.ToLower(iamAction)) {
					return true
				}
			}
		}
	}
	return false
}

// iamMatch matches name against an IAM action pattern with '*' and '?'.
func iamMatch(pattern, name string) bool {
	// Iterative wildcard matching: on a mismatch, let the last '*' absorb
	// one more character; linear in practice, no recursion.
	p, n, star, mark := 0, 0, -1, 0
	for n < len(name) {
		switch {
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == name[n]):
			p++
			n++
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, n
			p++
		case star >= 0:
			p = star + 1
			mark++
			n = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// ClusterRole returns a ClusterRole granting exactly the Kubernetes
// permissions the specs declare, merged per API group, resource and
// resource names (a rule narrowed to names stays a rule of its own).
func ClusterRole(name string, specs []Spec) *rbacv1.ClusterRole {
	type key struct{ group, resource, names string }
	verbs := map[key]map[string]bool{}
	for _, s := range specs {
		for _, r := range s.Permissions.Kube {
			names := slices.Clone(r.ResourceNames)
			sort.Strings(names)
			for _, g := range r.APIGroups {
				for _, res := range r.Resources {
					k := key{g, res, strings.Join(names, "\x00")}
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
		if keys[i].resource != keys[j].resource {
			return keys[i].resource < keys[j].resource
		}
		return keys[i].names < keys[j].names
	})
	role := &rbacv1.ClusterRole{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app.kubernetes.io/managed-by": "eksir"}},
	}
	for _, k := range keys {
		rule := rbacv1.PolicyRule{APIGroups: []string{k.group}, Resources: []string{k.resource}, Verbs: sortedSet(verbs[k])}
		if k.names != "" {
			rule.ResourceNames = strings.Split(k.names, "\x00")
		}
		role.Rules = append(role.Rules, rule)
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
