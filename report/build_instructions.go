package report

import (
	"path/filepath"
	"slices"
	"strings"

	"github.com/eksir/eksir/evidence"
)

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-/:=@+") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// archiveVerify lists the commands that check an archive with standard
// tools (docs/evidence-format.md, "Checking an archive without eksir") and
// with eksir. KEY.pub stands for the examiner's published public key.
func archiveVerify(archive, bag string) []Instruction {
	a := shellQuote(archive)
	extract := "tar -xf " + a
	if strings.HasSuffix(archive, ".zst") {
		extract = "zstd -dc " + a + " | tar -xf -"
	}
	return []Instruction{
		{Title: "The archive's bytes (coreutils)", Commands: []string{sidecarCheck(archive)},
			Note: "in the archive's folder, since the .sha256 file names the archive without a folder"},
		{Title: "The whole bag with the POSIX script (hashes, BagIt, seal signature, custody chain)",
			Commands: []string{"sh docs/verify-bag.sh " + a + " KEY.pub"},
			Note:     "KEY.pub is the examiner's published public key; without it the script checks with the key in the bag and says NOT pinned"},
		{Title: "BagIt validation (Library of Congress bagit-python)", Commands: []string{extract, "bagit.py --validate " + shellQuote(bag)},
			Note: "checks the payload and tag manifests, not the signature nor the custody chain"},
		{Title: "The seal signature with openssl (docs/evidence-format.md, step 7)", Commands: []string{
			"cd " + shellQuote(bag) + " && tmp=$(mktemp -d)",
			"type=$(jq -r .payloadType signatures/seal.dsse.json)",
			`jq -r .payload signatures/seal.dsse.json | openssl base64 -d -A > "$tmp/statement.json"`,
			`{ printf 'DSSEv1 %d %s %d ' ${#type} "$type" $(wc -c < "$tmp/statement.json"); cat "$tmp/statement.json"; } > "$tmp/pae"`,
			`jq -r '.signatures[0].sig' signatures/seal.dsse.json | openssl base64 -d -A > "$tmp/sig"`,
			`openssl pkeyutl -verify -pubin -inkey KEY.pub -rawin -in "$tmp/pae" -sigfile "$tmp/sig"`,
			`jq -r '.subject[0].digest.sha256' "$tmp/statement.json"; sha256sum tagmanifest-sha256.txt`,
		}, Note: "after extracting; the two hashes printed last must match"},
		{Title: "With eksir", Commands: []string{"eksir verify " + a + " --pubkey KEY.pub", "eksir-verify " + a + " --pubkey KEY.pub"},
			Note: "eksir-verify is the lean verifier binary; add --custodian-key FILE for records signed by another examiner"},
	}
}

// sidecarCheck is sha256sum -c run where the sidecar's name resolves.
func sidecarCheck(archive string) string {
	dir, base := filepath.Split(archive)
	if dir == "" {
		return "sha256sum -c " + shellQuote(base+".sha256")
	}
	return "(cd " + shellQuote(filepath.Clean(dir)) + " && sha256sum -c " + shellQuote(base+".sha256") + ")"
}

// caseVerify says how to check a case that is not sealed yet: seal it,
// then check the archive.
func caseVerify(incident, root, dir string) []Instruction {
	if root == "" {
		root = filepath.Dir(filepath.Clean(dir))
	}
	archive := filepath.Join(root, evidence.ArchiveName(incident, evidence.CompressZstd))
	seal := Instruction{Title: "Seal the case into a signed archive first",
		Commands: []string{"eksir seal --incident " + shellQuote(incident) + " --case-dir " + shellQuote(root) + " --key KEY"},
		Note:     "the case folder itself is checked record by record in this report; the commands below check the sealed archive"}
	return append([]Instruction{seal}, archiveVerify(archive, incident)...)
}

// releaseInstructions says how to release what is still contained, as
// eksir release takes it.
func releaseInstructions(r *Report) []Instruction {
	if r.Summary.StillContained == 0 {
		return []Instruction{}
	}
	base := "eksir release --incident " + shellQuote(r.Source.Incident)
	if r.Source.Kind == SourceCase {
		base += " --case-dir " + shellQuote(filepath.Dir(filepath.Clean(r.Source.Path)))
	}
	// A run over many targets names its steps ID@POD; --approve ID
	// approves the step for every target, so each playbook step is named
	// once.
	var steps, creds []string
	for _, c := range r.Containment {
		if !c.StillInPlace {
			continue
		}
		local, _, _ := strings.Cut(c.Step, "@")
		if !slices.Contains(steps, local) {
			steps = append(steps, local)
		}
		for _, cr := range r.Credentials {
			if cr.Step == c.Step && !slices.Contains(creds, local) {
				creds = append(creds, local)
			}
		}
	}
	out := []Instruction{{Title: "Release what is still contained (" + strings.Join(steps, ", ") + ")",
		Commands: []string{base, base + " --approve " + strings.Join(steps, ",")},
		Note:     "release undoes the run's containment steps in reverse order and never deletes evidence; it asks before each step unless --approve names it (or --yes)"}}
	if len(creds) > 0 {
		out = append(out, Instruction{Title: "Also restore the revoked credentials (" + strings.Join(creds, ", ") + ")",
			Commands: []string{base + " --restore-credentials"},
			Note:     "without --restore-credentials a revoked credential stays revoked; restore it only once it is known not to be compromised"})
	}
	if r.Source.Kind == SourceArchive {
		out[0].Note += "; run it where the incident's case folder is (--case-dir)"
	}
	return out
}
