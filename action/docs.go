package action

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"
)

// The prose of docs/actions.md that holds for every action, or for every
// action of a kind.
var (
	//go:embed docs/header.md
	docsHeader string
	//go:embed docs/collection.md
	docsCollection string
)

// kindSections orders the document's sections.
var kindSections = []struct {
	kind         Kind
	title, intro string
}{
	{Contain, "Containment", ""},
	{Collect, "Collection", docsCollection},
}

// Markdown renders the reference of the given actions (docs/actions.md):
// a fixed header, then per kind, in name order, each action's doc, kind,
// parameters, outputs, permissions and notes. Everything but the header
// and the section introductions comes from the Specs, so the document
// cannot drift from the code.
func Markdown(specs []Spec) []byte {
	specs = append([]Spec(nil), specs...)
	sort.Slice(specs, func(i, j int) bool { return specs[i].Name < specs[j].Name })
	var b bytes.Buffer
	b.WriteString(docsHeader)
	b.WriteString("\n## Parameter types\n\nEvery parameter and playbook input has one of these types. Target types are resolved before any change, and `plan` and `run` have a flag for each. Lists and mappings have no text form, so they cannot be playbook inputs.\n\n| type | value | CEL type | target flag |\n| --- | --- | --- | --- |\n")
	for _, t := range Types() {
		flag := ""
		if tg, ok := t.Target(); ok {
			flag = "`--" + tg.Flag + "`"
		}
		fmt.Fprintf(&b, "| `%s` | %s | `%s` | %s |\n", t, t.Doc(), t.CELType(), flag)
	}
	for _, sec := range kindSections {
		fmt.Fprintf(&b, "\n## %s\n", sec.title)
		if sec.intro != "" {
			b.WriteString("\n" + sec.intro)
		}
		for _, s := range specs {
			if s.Kind == sec.kind {
				writeSpec(&b, s)
			}
		}
	}
	return b.Bytes()
}

func writeSpec(b *bytes.Buffer, s Spec) {
	fmt.Fprintf(b, "\n### `%s`\n\n%s\n\n", s.Name, text(s.Doc))
	fmt.Fprintf(b, "Kind: **%s**", s.Kind)
	if s.Volatile {
		b.WriteString(" · volatile (ordered first)")
	}
	if s.Preserves {
		b.WriteString(" · preserves (may run before volatile capture)")
	}
	fmt.Fprintf(b, " · reversible: **%s**", yesNo(s.Reversible))
	if s.RevokesCredential {
		b.WriteString(" · revokes a credential (release keeps it revoked without `--restore-credentials`)")
	}
	var needs []string
	for _, c := range s.Needs {
		needs = append(needs, string(c))
	}
	fmt.Fprintf(b, " · needs: %s\n", strings.Join(needs, ", "))
	if len(s.Params) > 0 {
		b.WriteString("\n| parameter | type | required | default | values | meaning |\n| --- | --- | --- | --- | --- | --- |\n")
		for _, p := range s.Params {
			var enum []string
			for _, e := range p.Enum {
				enum = append(enum, "`"+e+"`")
			}
			def := ""
			if p.Default != nil {
				def = "`" + formatDefault(p.Default) + "`"
			}
			req := ""
			if p.Required {
				req = "yes"
			}
			fmt.Fprintf(b, "| `%s` | %s | %s | %s | %s | %s |\n", p.Name, p.Type, req, strings.ReplaceAll(def, "|", `\|`), strings.Join(enum, ", "), cell(p.Doc))
		}
	}
	if len(s.Outputs) > 0 {
		fmt.Fprintf(b, "\nOutputs: `%s`.\n", strings.Join(s.Outputs, "`, `"))
	}
	b.WriteString("\nIAM permissions:")
	if len(s.Permissions.IAM) == 0 {
		b.WriteString(" none.\n")
	} else {
		b.WriteString("\n\n")
		for _, p := range s.Permissions.IAM {
			res := "`*`"
			if len(p.Resources) > 0 {
				res = "`" + strings.Join(p.Resources, "`, `") + "`"
			}
			fmt.Fprintf(b, "- `%s` on %s", strings.Join(p.Actions, "`, `"), res)
			if len(p.Conditions) > 0 {
				c, _ := json.Marshal(p.Conditions)
				fmt.Fprintf(b, " when `%s`", c)
			}
			b.WriteString("\n")
		}
	}
	if len(s.Permissions.Kube) > 0 {
		b.WriteString("\nKubernetes permissions (exactly what it calls):\n\n")
		for _, r := range s.Permissions.Kube {
			var groups []string
			for _, g := range r.APIGroups {
				if g == "" {
					g = "core"
				}
				groups = append(groups, g)
			}
			fmt.Fprintf(b, "- %s: `%s`: %s\n", strings.Join(groups, ", "), strings.Join(r.Resources, "`, `"), strings.Join(r.Verbs, ", "))
		}
	}
	if notes := strings.TrimSpace(s.Notes); notes != "" {
		b.WriteString("\n" + notes + "\n")
	}
}

func yesNo(v bool) string {
	if v {
		return "yes"
	}
	return "no"
}

// formatDefault writes a default as a playbook would: durations as
// time.ParseDuration reads them, without zero minutes or seconds.
func formatDefault(v any) string {
	switch d := v.(type) {
	case time.Duration:
		s := d.String()
		if strings.HasSuffix(s, "m0s") {
			s = strings.TrimSuffix(s, "0s")
		}
		if strings.HasSuffix(s, "h0m") {
			s = strings.TrimSuffix(s, "0m")
		}
		return s
	case []string:
		return strings.Join(d, ", ")
	case map[string]string:
		keys := make([]string, 0, len(d))
		for k := range d {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for i, k := range keys {
			keys[i] = k + "=" + d[k]
		}
		return strings.Join(keys, ", ")
	}
	return fmt.Sprint(v)
}

// text makes plain text (Doc) safe as Markdown: "<node>" is not a tag.
func text(s string) string {
	return strings.NewReplacer("<", "&lt;", ">", "&gt;").Replace(s)
}

// cell makes plain text safe inside a Markdown table cell.
func cell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(text(s))
}
