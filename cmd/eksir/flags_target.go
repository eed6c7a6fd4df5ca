package main

// Flag groups of the commands that reach the cluster and the cloud, and
// how target flags become playbook inputs.

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/eksir/eksir/action"
	eaws "github.com/eksir/eksir/internal/aws"
	"github.com/eksir/eksir/playbooks"
)

// Flags of the commands that reach the cluster and the cloud.
var (
	kubeconfigFlag = &cli.StringFlag{Name: "kubeconfig", EnvVars: []string{"KUBECONFIG"}, Usage: "kubeconfig file (default: the usual chain)"}
	kubeCtxFlag    = &cli.StringFlag{Name: "context", Usage: "kubeconfig context (default: the current one)"}
	regionFlag     = &cli.StringFlag{Name: "region", EnvVars: []string{"AWS_REGION"}, Usage: "AWS region"}
	clusterFlag    = &cli.StringFlag{Name: "cluster", EnvVars: []string{"EKSIR_CLUSTER"}, Usage: "cluster name, recorded in evidence sources"}
)

// AWS flags like the AWS CLI's; AWS_ENDPOINT_URL and the rest of the SDK's
// environment apply as well.
var (
	profileFlag    = &cli.StringFlag{Name: "profile", EnvVars: []string{"AWS_PROFILE"}, Usage: "AWS shared config profile"}
	roleARNFlag    = &cli.StringFlag{Name: "role-arn", EnvVars: []string{"EKSIR_ROLE_ARN"}, Usage: "IAM role to assume for every AWS call (respond from a security account into the workload account); session eksir-INCIDENT"}
	externalIDFlag = &cli.StringFlag{Name: "external-id", EnvVars: []string{"EKSIR_EXTERNAL_ID"}, Usage: "external ID the role's trust policy asks for (with --role-arn)"}
	awsTimeoutFlag = &cli.DurationFlag{Name: "aws-timeout", EnvVars: []string{"EKSIR_AWS_TIMEOUT"}, Value: eaws.DefaultTimeout, Usage: "bound on each AWS call, retries included"}
)

// targetCLIFlags are a flag per target type (package action declares
// them; each fills the playbook inputs of its type), --set for the other
// inputs, and the flags every playbook command shares.
func targetCLIFlags() []cli.Flag {
	fs := []cli.Flag{}
	for _, t := range action.TargetTypes() {
		tg, _ := t.Target()
		fs = append(fs, &cli.StringFlag{Name: tg.Flag, Usage: tg.Usage})
	}
	return append(fs,
		&cli.StringSliceFlag{Name: "set", Usage: "input NAME=VALUE (repeatable), for inputs without a target flag"}, findingFlag,
		incFlag, keyFlag, actFlag, kubeconfigFlag, kubeCtxFlag, regionFlag, profileFlag, roleARNFlag, externalIDFlag, awsTimeoutFlag, clusterFlag)
}

// targetUsage is the target flags for a command's usage line.
func targetUsage() string {
	var s []string
	for _, t := range action.TargetTypes() {
		tg, _ := t.Target()
		s = append(s, fmt.Sprintf("[--%s %s]", tg.Flag, strings.ToUpper(strings.ReplaceAll(string(t), "-", "_"))))
	}
	return strings.Join(s, " ")
}

// givenInputs maps target flags to the inputs of their type and --set
// NAME=VALUE to inputs by name.
func givenInputs(c *cli.Context, ck *playbooks.Checked) (map[string]string, error) {
	given := map[string]string{}
	for _, t := range action.TargetTypes() {
		tg, _ := t.Target()
		v := c.String(tg.Flag)
		if v == "" {
			continue
		}
		used := false
		for _, in := range ck.Inputs {
			if in.Type == t {
				given[in.Name], used = v, true
			}
		}
		if !used {
			return nil, usagef("see its inputs with 'eksir playbooks show'", "playbook %s takes no %s input (--%s)", ck.Metadata.Name, t, tg.Flag)
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
