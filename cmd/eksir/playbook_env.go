package main

// From flags to what the engine needs: the playbook checked and its
// targets resolved, the clients, the case.

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/urfave/cli/v2"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

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

// connector builds clients from the command's flags, only when asked: the
// engine asks for the clouds the playbook's actions and targets declare.
// incident names the session of an assumed role.
type connector struct {
	c        *cli.Context
	incident string
}

func (k connector) Kubernetes(context.Context) (kubernetes.Interface, *rest.Config, error) {
	kc, err := kube.New(kubeOptions(k.c))
	if err != nil {
		return nil, nil, err
	}
	return kc.Typed, kc.Config, nil
}

func (k connector) AWS(ctx context.Context) (aws.Config, error) {
	if k.c.String(externalIDFlag.Name) != "" && k.c.String(roleARNFlag.Name) == "" {
		return aws.Config{}, usagef("add --role-arn, or drop --external-id", "--external-id without --role-arn")
	}
	t := k.c.Duration(awsTimeoutFlag.Name)
	if t <= 0 {
		return aws.Config{}, usagef("give a positive duration such as 30s", "--aws-timeout %s must be positive", t)
	}
	return eaws.Load(ctx, eaws.Options{Region: k.c.String(regionFlag.Name), Profile: k.c.String(profileFlag.Name),
		RoleARN: k.c.String(roleARNFlag.Name), ExternalID: k.c.String(externalIDFlag.Name), Incident: k.incident, Timeout: t})
}

// actionEnv is what actions may touch, without clients: they come from
// the connector for exactly the clouds the playbook needs.
func actionEnv(c *cli.Context, incident string, ev action.Evidence) *action.Env {
	return &action.Env{Evidence: ev, Incident: incident,
		Responder: evidence.Actor(c.String(actFlag.Name)), Cluster: c.String(clusterFlag.Name), Log: slog.Default(), Now: time.Now}
}

// prepared is a playbook checked against the registry with its targets
// resolved, before anything changes.
type prepared struct {
	reg      *action.Registry
	ck       *playbooks.Checked
	in       playbooks.Inputs
	env      *action.Env
	incident string
	// finding is --finding's, nil without it.
	finding *givenFinding
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
	if p.finding, err = findingInputs(c, p.ck, given); err != nil {
		return nil, err
	}
	p.incident = c.String(incFlag.Name)
	if p.incident == "" {
		p.incident = playbooks.NewIncidentID(time.Now())
	}
	if err := evidence.ValidIncidentID(p.incident); err != nil {
		return nil, err
	}
	p.env = actionEnv(c, p.incident, nil)
	if p.finding != nil && p.env.Cluster == "" {
		p.env.Cluster = p.finding.Cluster
	}
	if err := action.Connect(c.Context, p.env, p.ck.Clouds(), connector{c, p.incident}); err != nil {
		return nil, err
	}
	resolvers := map[action.Cloud]playbooks.TargetResolver{}
	if p.env.Kube != nil {
		resolvers[action.Kubernetes] = playbooks.KubeTargets(p.env.Kube)
	}
	if slices.Contains(p.ck.Clouds(), action.AWS) {
		resolvers[action.AWS] = playbooks.AWSTargets(p.env.AWS)
	}
	pod, targets, err := playbooks.ResolveTargets(c.Context, p.ck, given, resolvers)
	if err != nil {
		return nil, err
	}
	p.in = targets[0]
	if pod != "" {
		// Many pods: the steps run once per pod; the run's own inputs
		// keep the reference as given (deployment:NS/NAME, ...).
		p.ck = p.ck.ForTargets(pod, targets)
		p.in = playbooks.Inputs{}
		for k, v := range targets[0] {
			p.in[k] = v
		}
		p.in[pod] = given[pod]
	}
	return p, nil
}

// openForJournal opens an existing case (resume and release never create
// one); the engine connects to what the journaled playbook needs.
func openForJournal(c *cli.Context, incident string) (*evidence.Case, *action.Env, error) {
	if _, err := os.Stat(filepath.Join(c.String(flagCaseDir), incident)); err != nil {
		return nil, nil, usagef("check --incident and --case-dir", "no case %s in %s", incident, c.String(flagCaseDir))
	}
	cs, err := openCase(c, incident)
	if err != nil {
		return nil, nil, err
	}
	return cs, actionEnv(c, incident, cs), nil
}
