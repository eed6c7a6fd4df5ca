package main

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/eksir/eksir/cmd/internal/evidencecli"
	"github.com/eksir/eksir/lab"
)

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
					&cli.BoolFlag{Name: "suspect-process", Value: true, Usage: "run the suspect's process for real (own namespaces, the pod's cgroup, a connection to the scenario's remote host); needs root"},
				},
				Action: labSeed,
			},
		},
	}
}

func labUp(c *cli.Context) error {
	progress := func(s string) { fmt.Fprintln(c.App.ErrWriter, "lab:", s) }
	st, err := lab.Up(c.Context, lab.Options{Dir: c.String(flagLabDir), Progress: progress})
	if err != nil {
		return labErr(err)
	}
	if jsonOutput(c) {
		return writeJSON(c.App.Writer, st)
	}
	w := c.App.Writer
	fmt.Fprintf(w, "lab ready in %s (%s)\n\n", st.ReadyAfter, st.Dir)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "COMPONENT\tPID\tPORT\tLOG")
	for _, p := range st.Procs {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", p.Name, p.PID, p.Port, p.Log)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nkube-apiserver  %s\nAWS (moto)      %s\nkubeconfig      %s\n\nload the environment:  . %s\nthen:                  eksir lab seed --scenario crypto-miner\n",
		st.APIServer, st.AWSEndpoint, st.Kubeconfig, st.EnvFile)
	return nil
}

func labDown(c *cli.Context) error {
	res, err := lab.Down(c.Context, c.String(flagLabDir))
	if err != nil {
		return labErr(err)
	}
	if jsonOutput(c) {
		return writeJSON(c.App.Writer, res)
	}
	for _, p := range res.Stopped {
		fmt.Fprintf(c.App.Writer, "stopped %s (pid %d)\n", p.Name, p.PID)
	}
	fmt.Fprintf(c.App.Writer, "lab in %s is down; logs stay in %s/logs\n", res.Dir, res.Dir)
	return nil
}

func labStatus(c *cli.Context) error {
	r, err := lab.Status(c.Context, c.String(flagLabDir))
	if err != nil {
		return labErr(err)
	}
	if jsonOutput(c) {
		if err := writeJSON(c.App.Writer, r); err != nil {
			return err
		}
	} else {
		state := "running"
		if !r.Running {
			state = "DEGRADED: a component is not running (see its log; 'eksir lab up' restarts the lab)"
		}
		fmt.Fprintf(c.App.Writer, "lab %s: %s\n", r.Dir, state)
		tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "COMPONENT\tPID\tPORT\tRUNNING\tLOG")
		for _, p := range r.Components {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%t\t%s\n", p.Name, p.PID, p.Port, p.Running, p.Log)
		}
		tw.Flush()
	}
	if !r.Running {
		return evidencecli.Silent(errors.New("lab degraded"))
	}
	return nil
}

func labSeed(c *cli.Context) error {
	if _, ok := lab.Scenarios[c.String("scenario")]; !ok {
		return usagef("scenarios: "+strings.Join(lab.ScenarioNames(), ", "), "unknown scenario %q", c.String("scenario"))
	}
	st, err := lab.Load(c.String(flagLabDir))
	if err != nil {
		return labErr(err)
	}
	progress := func(s string) { fmt.Fprintln(c.App.ErrWriter, "lab:", s) }
	res, err := lab.Seed(c.Context, st, lab.SeedOptions{Scenario: c.String("scenario"),
		Nodes: c.Int("nodes"), PodsPerNode: c.Int("pods-per-node"), Progress: progress, SuspectProcess: c.Bool("suspect-process")})
	if err != nil {
		return labErr(err)
	}
	if jsonOutput(c) {
		return writeJSON(c.App.Writer, res)
	}
	w := c.App.Writer
	fmt.Fprintf(w, "seeded %s in %s: %s\n%d nodes, %d pods, cluster %s, account %s, region %s\n\ntargets:\n",
		res.Scenario, res.Duration, res.Description, res.Nodes, res.Pods, res.Cluster, res.Account, res.Region)
	keys := make([]string, 0, len(res.Targets))
	for k := range res.Targets {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, k := range keys {
		fmt.Fprintf(tw, "  %s\t%s\n", k, res.Targets[k])
	}
	tw.Flush()
	fmt.Fprintf(w, "\nalso: PV %s (EBS %s, PVC %s), evidence bucket %s, ASG %s, OIDC %s\n",
		res.PersistentVolume, res.DataVolume, res.PVC, res.EvidenceBucket, res.AutoScalingGroup, res.OIDCIssuer)
	if res.SuspectProcess != "" {
		fmt.Fprintf(w, "suspect process: %s\n", res.SuspectProcess)
	}
	return nil
}

// labErr turns the lab's sentinel errors into messages with a next step.
func labErr(err error) error {
	switch {
	case errors.Is(err, lab.ErrNotRunning):
		return evidencecli.Hint(err, "start one with 'eksir lab up' (or pass --dir)")
	case errors.Is(err, lab.ErrAlreadySeeded):
		return evidencecli.Hint(err, "run 'eksir lab up' again for a fresh lab, then seed")
	}
	return err
}
