package main

// From flags to what the engine needs: the playbook checked and its
// targets resolved, the clients, the case.

import (
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/eksir/eksir/action"
	"github.com/eksir/eksir/evidence"
	eaws "github.com/eksir/eksir/internal/aws"
	"github.com/eksir/eksir/internal/kube"
	"github.com/eksir/eksir/playbooks"
)

// kubeOptions are the Kubernetes client options the flags ask for.
func kubeOptions(c *cli.Context) kube.Options {
	return kube.Options{Kubeconfig: c.String(kubeconfigFlag.Name), Context: c.String(kubeCtxFlag.Name)}
}

// actionEnv builds what actions may touch. AWS is configured only when one
// of the playbook's actions needs it, so Kubernetes-only playbooks work
// without AWS configuration.
func actionEnv(c *cli.Context, specs []action.Spec, incident string, ev action.Evidence) (*action.Env, error) {
	kc, err := kube.New(kubeOptions(c))
	if err != nil {
		return nil, err
	}
	env := &action.Env{Kube: kc.Typed, RESTConfig: kc.Config, Evidence: ev, Incident: incident,
		Responder: evidence.Actor(c.String(actFlag.Name)), Cluster: c.String(clusterFlag.Name), Log: slog.Default(), Now: time.Now}
	for _, s := range specs {
		if len(s.Permissions.IAM) > 0 {
			env.AWS, err = eaws.Load(c.Context, eaws.Options{Region: c.String(regionFlag.Name)})
			if err != nil {
				return nil, err
			}
			break
		}
	}
	return env, nil
}

// prepared is a playbook checked against the registry with its targets
// resolved, before anything changes.
type prepared struct {
	reg      *action.Registry
	ck       *playbooks.Checked
	in       playbooks.Inputs
	env      *action.Env
	incident string
}

// preparePlaybook loads and validates the playbook argument, picks the
// incident ID (a fresh one when none is given: object names derive from it,
// so a plan shows the names a run would use) and resolves the targets. A bad
// playbook or target changes nothing anywhere, not even the case folder.
func preparePlaybook(c *cli.Context) (*prepared, error) {
	arg, err := oneArg(c, "playbook")
	if err != nil {
		return nil, err
	}
	p := &prepared{reg: newRegistry()}
	if p.ck, err = loadChecked(arg, p.reg); err != nil {
		return nil, err
	}
	given, err := givenInputs(c, p.ck)
	if err != nil {
		return nil, err
	}
	p.incident = c.String(incFlag.Name)
	if p.incident == "" {
		p.incident = playbooks.NewIncidentID(time.Now())
	}
	if err := evidence.ValidIncidentID(p.incident); err != nil {
		return nil, err
	}
	if p.env, err = actionEnv(c, p.ck.Specs(), p.incident, nil); err != nil {
		return nil, err
	}
	if p.in, err = playbooks.Resolve(c.Context, p.ck, given, playbooks.KubeTargets(p.env.Kube)); err != nil {
		return nil, err
	}
	return p, nil
}

// openForJournal opens an existing case (resume and release never create
// one) and the clients its actions need.
func openForJournal(c *cli.Context, incident string) (*evidence.Case, *action.Env, error) {
	if _, err := os.Stat(filepath.Join(c.String(flagCaseDir), incident)); err != nil {
		return nil, nil, usagef("check --incident and --case-dir", "no case %s in %s", incident, c.String(flagCaseDir))
	}
	cs, err := openCase(c, incident)
	if err != nil {
		return nil, nil, err
	}
	env, err := actionEnv(c, newRegistry().Specs(), incident, cs)
	if err != nil {
		cs.Close()
		return nil, nil, err
	}
	return cs, env, nil
}
