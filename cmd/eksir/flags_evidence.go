package main

// The flags of the commands that sign evidence, and what they open.

import (
	"os"
	"os/user"

	"github.com/urfave/cli/v2"

	"github.com/eksir/eksir/cmd/internal/evidencecli"
	"github.com/eksir/eksir/evidence"
)

// Flags shared by the commands that sign evidence or act on a case.
var (
	keyFlag = &cli.StringFlag{Name: "key", EnvVars: []string{"EKSIR_SIGNING_KEY"}, Usage: "Ed25519 private key (PEM) that signs custody records and seals"}
	incFlag = &cli.StringFlag{Name: "incident", Aliases: []string{"i"}, Usage: "incident ID (letters, digits, '.', '_', '-')"}
	actFlag = &cli.StringFlag{Name: "examiner", EnvVars: []string{"EKSIR_EXAMINER"}, Usage: "who acts, as recorded in custody records (default: OS user@host)"}
)

// The --custodian-key flag and its keys are evidencecli's, shared with
// verify and custody show.
var (
	custodianKeyFlag = evidencecli.CustodianKeyFlag
	custodianKeys    = evidencecli.CustodianKeys
)

func loadSigner(c *cli.Context) (*evidence.Signer, error) {
	p := c.String(keyFlag.Name)
	if p == "" {
		return nil, usagef("create one with 'eksir keygen --out FILE', then pass --key FILE or set EKSIR_SIGNING_KEY", "no signing key: evidence is never written unsigned")
	}
	return evidence.LoadSigner(p)
}

func collector() evidence.Collector {
	host, _ := os.Hostname()
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	return evidence.Collector{OSUser: name, Host: host}
}

func requireIncident(c *cli.Context) (string, error) {
	id := c.String(incFlag.Name)
	if id == "" {
		return "", usagef("pass --incident ID, for example --incident INC-2041", "--incident is required")
	}
	return id, evidence.ValidIncidentID(id)
}

func openCase(c *cli.Context, incident string) (*evidence.Case, error) {
	signer, err := loadSigner(c)
	if err != nil {
		return nil, err
	}
	return evidence.OpenCase(c.Context, evidence.CaseOptions{
		Dir: c.String(flagCaseDir), Incident: incident, Signer: signer, Tool: toolName(),
		Collector: collector(), Actor: c.String(actFlag.Name),
	})
}
