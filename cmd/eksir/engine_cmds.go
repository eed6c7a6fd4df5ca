package main

// Declarations of the commands that reach the cluster and the cloud.

import (
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/eksir/eksir/lab"
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

func approvalFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "yes", Aliases: []string{"y"}, Usage: "approve every step that asks for approval"},
		&cli.StringSliceFlag{Name: "approve", Usage: "approve these steps (STEP,STEP...)"},
		&cli.IntFlag{Name: "parallel", Value: 4, Usage: "run at most N independent steps at once"},
	}
}

// playbookCommands declares the playbook engine's commands.
func playbookCommands() []*cli.Command {
	return []*cli.Command{
		{
			Name:  "playbooks",
			Usage: "list, show and validate playbooks",
			Subcommands: []*cli.Command{
				{Name: "list", Usage: "list built-in playbooks, one a line, name first", Action: playbooksList},
				{Name: "show", Usage: "print a built-in playbook's YAML exactly as embedded", UsageText: "eksir playbooks show NAME", Action: playbooksShow},
				{Name: "validate", Usage: "validate playbook files against the action registry", UsageText: "eksir playbooks validate FILE...", Action: playbooksValidate},
			},
		},
		{
			Name: "plan", Usage: "resolve targets and show every step's concrete change and permission check; changes nothing",
			UsageText: "eksir plan PLAYBOOK [--pod NS/NAME] [--node NAME] [--instance ID] [--iam-role ARN] [--access-key ID] [--incident ID]",
			Flags:     targetCLIFlags(), Action: planAction,
		},
		{
			Name: "run", Usage: "run a playbook, journaling every step into the incident's custody log",
			UsageText: "eksir run PLAYBOOK [target flags] [--incident ID] [--yes | --approve STEP,...] [--parallel N] [--drill]",
			Flags:     append(append(targetCLIFlags(), approvalFlags()...), &cli.BoolFlag{Name: "drill", Usage: "game day: release at the end and print a drill score"}),
			Action:    runAction,
		},
		{
			Name: "resume", Usage: "continue an interrupted run from its journal; no step's side effect happens twice",
			UsageText: "eksir resume --incident ID [--yes | --approve STEP,...] [--parallel N]",
			Flags:     append([]cli.Flag{incFlag, keyFlag, actFlag, kubeconfigFlag, kubeCtxFlag, regionFlag, clusterFlag}, approvalFlags()...),
			Action:    resumeAction,
		},
		{
			Name: "release", Usage: "undo the run's containment steps in reverse order; evidence is never deleted",
			UsageText: "eksir release --incident ID [--yes | --approve STEP,...] [--restore-credentials]",
			Flags: append([]cli.Flag{incFlag, keyFlag, actFlag, kubeconfigFlag, kubeCtxFlag, regionFlag, clusterFlag,
				&cli.BoolFlag{Name: "restore-credentials", Usage: "also re-enable revoked credentials"}}, approvalFlags()...),
			Action: releaseAction,
		},
		{
			Name: "status", Usage: "show each step's state from the incident's journal",
			UsageText: "eksir status --incident ID",
			Flags:     []cli.Flag{incFlag, keyFlag, actFlag},
			Action:    statusAction,
		},
		{
			Name: "permissions", Usage: "print the least-privilege IAM policy or ClusterRole for playbooks' actions",
			UsageText: "eksir permissions [--playbook P]... --format iam|rbac",
			Flags: []cli.Flag{
				&cli.StringSliceFlag{Name: "playbook", Usage: "built-in name or file (repeatable); default: every registered action"},
				&cli.StringFlag{Name: "format", Value: "iam", Usage: "iam (policy JSON) or rbac (ClusterRole YAML)"},
			},
			Action: permissionsAction,
		},
	}
}

const flagLabDir = "dir"

func labDirFlag() cli.Flag {
	return &cli.StringFlag{Name: flagLabDir, Value: ".eksir-lab", EnvVars: []string{"EKSIR_LAB_DIR"},
		Usage: "lab folder: state, logs, kubeconfig and env file"}
}

// labCommand declares `eksir lab up|down|status|seed`.
func labCommand() *cli.Command {
	return &cli.Command{
		Name:  "lab",
		Usage: "run a local EKS-like lab (kube-apiserver, etcd, kwok, moto) for tests and game days",
		Subcommands: []*cli.Command{
			{
				Name:   "up",
				Usage:  "start etcd, kube-apiserver, kwok and moto; write a kubeconfig and an env file",
				Flags:  []cli.Flag{labDirFlag()},
				Action: labUp,
			},
			{
				Name:   "down",
				Usage:  "stop exactly the processes `lab up` started (by recorded pid)",
				Flags:  []cli.Flag{labDirFlag()},
				Action: labDown,
			},
			{
				Name:   "status",
				Usage:  "show whether the lab's processes run",
				Flags:  []cli.Flag{labDirFlag()},
				Action: labStatus,
			},
			{
				Name:  "seed",
				Usage: "create an incident scenario, consistent in Kubernetes and moto",
				Flags: []cli.Flag{
					labDirFlag(),
					&cli.StringFlag{Name: "scenario", Required: true, Usage: "one of: " + strings.Join(lab.ScenarioNames(), ", ")},
					&cli.IntFlag{Name: "nodes", Value: 3, Usage: "number of nodes (EC2 instances)"},
					&cli.IntFlag{Name: "pods-per-node", Value: 4, Usage: "pods on each node"},
				},
				Action: labSeed,
			},
		},
	}
}
