package main

// Flag groups of the commands that reach the cluster and the cloud, and
// how target flags become playbook inputs.

import (
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/eksir/eksir/playbooks"
)

// Flags of the commands that reach the cluster and the cloud.
var (
	kubeconfigFlag = &cli.StringFlag{Name: "kubeconfig", EnvVars: []string{"KUBECONFIG"}, Usage: "kubeconfig file (default: the usual chain)"}
	kubeCtxFlag    = &cli.StringFlag{Name: "context", Usage: "kubeconfig context (default: the current one)"}
	regionFlag     = &cli.StringFlag{Name: "region", EnvVars: []string{"AWS_REGION"}, Usage: "AWS region"}
	clusterFlag    = &cli.StringFlag{Name: "cluster", EnvVars: []string{"EKSIR_CLUSTER"}, Usage: "cluster name, recorded in evidence sources"}
)

// Target flags fill the playbook input of the same type.
var targetFlags = []struct{ flag, inType string }{
	{"pod", "pod"}, {"node", "node"}, {"instance", "instance"}, {"iam-role", "iam-role"}, {"access-key", "access-key"},
}

func targetCLIFlags() []cli.Flag {
	fs := []cli.Flag{}
	for _, t := range targetFlags {
		usage := map[string]string{"pod": "suspect pod as NAMESPACE/NAME", "node": "node name", "instance": "EC2 instance ID",
			"iam-role": "IAM role ARN", "access-key": "IAM access key ID"}[t.flag]
		fs = append(fs, &cli.StringFlag{Name: t.flag, Usage: usage})
	}
	return append(fs,
		&cli.StringSliceFlag{Name: "set", Usage: "input NAME=VALUE (repeatable), for inputs without a target flag"},
		incFlag, keyFlag, actFlag, kubeconfigFlag, kubeCtxFlag, regionFlag, clusterFlag)
}

// givenInputs maps target flags to the inputs of their type and --set
// NAME=VALUE to inputs by name.
func givenInputs(c *cli.Context, ck *playbooks.Checked) (map[string]string, error) {
	given := map[string]string{}
	for _, t := range targetFlags {
		v := c.String(t.flag)
		if v == "" {
			continue
		}
		used := false
		for _, in := range ck.Inputs {
			if string(in.Type) == t.inType {
				given[in.Name], used = v, true
			}
		}
		if !used {
			return nil, usagef("see its inputs with 'eksir playbooks show'", "playbook %s takes no %s input (--%s)", ck.Metadata.Name, t.inType, t.flag)
		}
	}
	for _, kv := range c.StringSlice("set") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, usagef("use --set NAME=VALUE", "bad --set %q", kv)
		}
		given[k] = v
	}
	return given, nil
}
