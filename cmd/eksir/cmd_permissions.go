package main

import (
	"fmt"
	"io"

	"github.com/urfave/cli/v2"
	"sigs.k8s.io/yaml"

	"github.com/eksir/eksir/action"
)

// permissionsCommand declares `eksir permissions`.
func permissionsCommand() *cli.Command {
	return &cli.Command{
		Name: "permissions", Usage: "print the least-privilege IAM policy or ClusterRole for playbooks' actions",
		UsageText: "eksir permissions [--playbook P]... --format iam|rbac",
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "playbook", Usage: "built-in name or file (repeatable); default: every registered action"},
			&cli.StringFlag{Name: "format", Value: "iam", Usage: "iam (policy JSON) or rbac (ClusterRole YAML)"},
		},
		Action: permissionsAction,
	}
}

func permissionsAction(c *cli.Context) error {
	reg := newRegistry()
	specs := reg.Specs()
	if names := c.StringSlice("playbook"); len(names) > 0 {
		seen := map[string]bool{}
		specs = nil
		for _, n := range names {
			ck, err := loadChecked(n, reg)
			if err != nil {
				return err
			}
			for _, s := range ck.Specs() {
				if !seen[s.Name] {
					seen[s.Name] = true
					specs = append(specs, s)
				}
			}
		}
	}
	switch c.String("format") {
	case "iam":
		b, err := action.IAMPolicy(specs)
		if err != nil {
			return err
		}
		_, err = c.App.Writer.Write(b)
		return err
	case "rbac":
		return writeRoles(c.App.Writer, specs)
	}
	return usagef("use --format iam or --format rbac", "unknown format %q", c.String("format"))
}

// revokerWarning heads the revoker role: what holding it amounts to.
const revokerWarning = `# eksir-revoker: only for the actions that revoke credentials. Removing a subject
# from a RoleBinding or ClusterRoleBinding needs update on bindings and bind on the
# role they reference, which Kubernetes checks even for a removal; the roles are
# not known in advance, so bind is on every role and clusterrole. Together these
# let the holder bind any role, cluster-admin included, to anyone: bind it to the
# incident commander or a break-glass identity, not to every responder.
`

// writeRoles writes the ClusterRoles for specs as YAML documents: the
// responder's role, without the credential-revoking actions, and, when
// specs has any, the revoker's role apart, because only it can re-bind
// roles.
func writeRoles(w io.Writer, specs []action.Spec) error {
	var responder, revoker []action.Spec
	for _, s := range specs {
		if s.RevokesCredential {
			revoker = append(revoker, s)
		} else {
			responder = append(responder, s)
		}
	}
	b, err := yaml.Marshal(action.ClusterRole("eksir-responder", responder))
	if err != nil {
		return err
	}
	if _, err := w.Write(b); err != nil {
		return err
	}
	if len(revoker) == 0 {
		return nil
	}
	if b, err = yaml.Marshal(action.ClusterRole("eksir-revoker", revoker)); err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "---\n%s%s", revokerWarning, b)
	return err
}
