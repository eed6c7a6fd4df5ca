package report

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// RenderMarkdown writes r as GitHub-flavoured Markdown that also reads in
// Jira and plain text: headings, pipe tables and fenced commands, never
// raw HTML (text from the evidence is escaped, so a hostile pod name
// cannot inject markup). The integrity verdict is the first line: a
// tampered source says so before anything else.
func RenderMarkdown(w io.Writer, r *Report) error {
	bw := bufio.NewWriter(w)
	m := &md{w: bw}
	m.integrityBanner(r)
	m.f("# Incident report: %s\n\n", esc(r.Source.Incident))
	m.f("Generated %s by %s from the %s `%s`", esc(r.GeneratedAt), esc(orDash(r.GeneratedBy)), esc(r.Source.Kind), code(r.Source.Path))
	if r.Source.ArchiveSHA256 != "" {
		m.f(" (sha256 `%s`)", code(r.Source.ArchiveSHA256))
	}
	m.f(".\n\n")
	m.summary(r)
	m.containment(r)
	m.timeline(r)
	m.evidence(r)
	m.notCollected(r)
	m.credentials(r)
	m.snapshots(r)
	m.memory(r)
	m.drill(r)
	m.instructions("How to verify", r.Verify)
	if len(r.Release) > 0 {
		m.instructions("How to release", r.Release)
	}
	m.checks(r)
	m.custody(r)
	if m.err != nil {
		return fmt.Errorf("render report as Markdown: %w", m.err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("render report as Markdown: %w", err)
	}
	return nil
}

type md struct {
	w   io.Writer
	err error
}

func (m *md) f(format string, a ...any) {
	if m.err == nil {
		_, m.err = fmt.Fprintf(m.w, format, a...)
	}
}

// table writes a pipe table; cells are already escaped.
func (m *md) table(head []string, rows [][]string) {
	m.f("| %s |\n|%s\n", strings.Join(head, " | "), strings.Repeat(" --- |", len(head)))
	for _, r := range rows {
		m.f("| %s |\n", strings.Join(r, " | "))
	}
	m.f("\n")
}

// esc makes text safe in a table cell and in running text: no line
// breaks, no pipes, no markup, no HTML.
func esc(s string) string {
	s = strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(s)
	var b strings.Builder
	for _, c := range s {
		if strings.ContainsRune("\\`*_[]<>|#!~&", c) {
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// code is text for a code span: backticks and line breaks removed, pipes
// escaped (GitHub splits cells on them even inside code).
func code(s string) string {
	s = strings.NewReplacer("`", "'", "\n", " ", "\r", " ", "|", `\|`).Replace(s)
	return s
}

func codeOr(s string) string {
	if s == "" {
		return "—"
	}
	return "`" + code(s) + "`"
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func (m *md) integrityBanner(r *Report) {
	in := r.Integrity
	switch in.Status {
	case IntegrityTampered:
		failed := 0
		for _, c := range in.Checks {
			if c.Status == "fail" {
				failed++
			}
		}
		m.f("> **INTEGRITY: TAMPERED.** %d check(s) failed: this %s was changed after the evidence was recorded; do not rely on what follows without the failed checks below.\n>\n", failed, esc(r.Source.Kind))
		for _, c := range in.Checks {
			if c.Status == "fail" {
				m.f("> - **%s** %s: %s\n", esc(c.Name), codeOr(c.Path), esc(c.Detail))
			}
		}
		m.f("\n")
	case IntegrityUnpinned:
		m.f("> **INTEGRITY: verified, signer not pinned.** Every check passed, but against the key found in the %s (%s), not a key you gave: compare it with the examiner's published key.\n\n", esc(r.Source.Kind), codeOr(in.SignerKeyID))
	case IntegrityVerified:
		m.f("> **INTEGRITY: verified.** Every check passed with the trusted key %s.\n\n", codeOr(in.SignerKeyID))
	default:
		m.f("> **INTEGRITY: %s.**\n\n", esc(orDash(in.Status)))
	}
}

func (m *md) summary(r *Report) {
	s := r.Summary
	m.f("## Summary\n\n")
	rows := [][]string{
		{"Incident", esc(s.Incident)},
		{"Started", esc(orDash(s.Started))},
		{"Ended", esc(orDash(s.Ended))},
		{"Sealed", esc(orDash(s.SealedAt))},
		{"Steps", fmt.Sprintf("%d (%d failed)", s.Steps, s.StepsFailed)},
		{"Evidence items", fmt.Sprintf("%d collected, %d not collected", s.Items, s.NotCollected)},
		{"Still contained", fmt.Sprint(s.StillContained)},
		{"Clusters", esc(orDash(strings.Join(s.Clusters, ", ")))},
		{"AWS accounts", esc(orDash(strings.Join(s.Accounts, ", ")))},
		{"Identities", esc(orDash(strings.Join(s.Identities, ", ")))},
	}
	var tg []string
	for _, t := range s.Targets {
		tg = append(tg, t.Kind+" "+t.Name)
	}
	rows = append(rows, []string{"Targets", esc(orDash(strings.Join(tg, ", ")))})
	m.table([]string{"", ""}, rows)
	if len(s.Runs) > 0 {
		var rr [][]string
		for _, run := range s.Runs {
			drill := ""
			if run.Drill {
				drill = " (drill)"
			}
			rr = append(rr, []string{esc(run.Playbook) + drill, esc(run.Outcome), esc(run.Started), esc(orDash(run.Ended)), esc(run.Actor), codeOr(short(run.SHA256))})
		}
		m.f("### Playbook runs\n\n")
		m.table([]string{"Playbook", "Outcome", "Started", "Ended", "Actor", "Playbook sha256"}, rr)
	}
}

// short abbreviates a hash for a table; the full one is in the JSON.
func short(h string) string {
	if len(h) > 16 {
		return h[:16] + "…"
	}
	return h
}

func (m *md) containment(r *Report) {
	m.f("## Containment\n\n")
	if len(r.Containment) == 0 {
		m.f("No containment step ran.\n\n")
		return
	}
	var rows [][]string
	for _, c := range r.Containment {
		rows = append(rows, []string{esc(orDash(c.Target)), esc(c.Step), codeOr(c.Action), "**" + esc(c.State) + "**", yesNo(c.Verified),
			yesNo(c.StillInPlace), esc(orDash(c.AppliedAt)), esc(orDash(c.ReleasedAt)), esc(orDash(strings.Join(c.Warnings, "; ")))})
	}
	m.table([]string{"Target", "Step", "Action", "State", "Verified", "Still in place", "Applied", "Released", "Warnings"}, rows)
}

func (m *md) timeline(r *Report) {
	m.f("## Timeline\n\n")
	if len(r.Timeline) == 0 {
		m.f("No step was journaled.\n\n")
		return
	}
	var rows [][]string
	for _, s := range r.Timeline {
		approval := "—"
		if a := s.Approval; a != nil {
			approval = esc(a.How + " by " + a.By)
		}
		notes := append([]string{}, s.Warnings...)
		if s.Error != "" {
			notes = append([]string{s.Error}, notes...)
		}
		if s.Resumed {
			notes = append(notes, "resumed after a crash or interrupt")
		}
		rows = append(rows, []string{esc(orDash(s.Started)), esc(s.ID), codeOr(s.Action), esc(s.Kind), "**" + esc(orDash(s.Status)) + "**",
			fmt.Sprintf("%d ms", s.DurationMS), fmt.Sprint(s.Attempts), approval, esc(orDash(strings.Join(notes, "; ")))})
	}
	m.table([]string{"Started", "Step", "Action", "Kind", "Status", "Duration", "Attempts", "Approval", "Notes"}, rows)
}

func (m *md) evidence(r *Report) {
	m.f("## Evidence\n\n")
	if len(r.Evidence) == 0 {
		m.f("No evidence was collected.\n\n")
		return
	}
	group := ""
	var rows [][]string
	flush := func() {
		if len(rows) > 0 {
			m.f("### %s\n\n", esc(group))
			m.table([]string{"Path", "Size", "SHA-256", "Acquired", "Method", "By"}, rows)
			rows = nil
		}
	}
	for _, it := range r.Evidence {
		if it.Group != group {
			flush()
			group = it.Group
		}
		rows = append(rows, []string{codeOr(it.Path), fmt.Sprint(it.Size), codeOr(it.SHA256), esc(it.AcquiredAt), esc(orDash(it.Method)), esc(orDash(it.By))})
	}
	flush()
}

func (m *md) notCollected(r *Report) {
	m.f("## Not collected\n\n")
	if len(r.NotCollected) == 0 {
		m.f("Everything the steps intended was collected.\n\n")
		return
	}
	var rows [][]string
	for _, it := range r.NotCollected {
		rows = append(rows, []string{esc(it.Group), codeOr(it.Path), esc(orDash(it.Reason)), esc(orDash(it.Method))})
	}
	m.table([]string{"About", "Path", "Reason", "Method"}, rows)
}

func (m *md) credentials(r *Report) {
	m.f("## Credentials\n\n")
	if len(r.Credentials) == 0 {
		m.f("No credential was revoked.\n\n")
		return
	}
	var rows [][]string
	for _, c := range r.Credentials {
		rows = append(rows, []string{esc(c.Kind), codeOr(c.Credential), esc(c.Step), "**" + esc(c.State) + "**", esc(orDash(c.RevokedAt)),
			esc(orDash(strings.Join(c.BlastRadius, ", ")))})
	}
	m.table([]string{"Kind", "Credential", "Step", "State", "Revoked", "Blast radius (also cut off)"}, rows)
}

func (m *md) snapshots(r *Report) {
	if len(r.Snapshots) == 0 {
		return
	}
	m.f("## EBS snapshots\n\n")
	var rows [][]string
	for _, s := range r.Snapshots {
		rows = append(rows, []string{codeOr(s.SnapshotID), codeOr(s.VolumeID), esc(orDash(s.Instance)), esc(orDash(s.Pod)), esc(s.State),
			fmt.Sprintf("%d GiB", s.SizeGiB), yesNo(s.Encrypted), codeOr(s.Descriptor), codeOr(s.DescriptorSHA256)})
	}
	m.table([]string{"Snapshot", "Volume", "Instance", "Pod", "State", "Size", "Encrypted", "Descriptor", "Descriptor sha256"}, rows)
}

func (m *md) memory(r *Report) {
	if len(r.MemoryImages) == 0 {
		return
	}
	m.f("## Memory images\n\n")
	var rows [][]string
	for _, i := range r.MemoryImages {
		rows = append(rows, []string{codeOr(i.Path), esc(i.Target), fmt.Sprint(i.Size), codeOr(i.SHA256), codeOr(i.SourceSHA256), esc(orDash(i.Method))})
	}
	m.table([]string{"Path", "Target", "Size", "SHA-256", "SHA-256 on the host", "Method"}, rows)
}

func (m *md) drill(r *Report) {
	d := r.Drill
	if d == nil {
		return
	}
	m.f("## Drill\n\n")
	m.table([]string{"", ""}, [][]string{
		{"Playbook", esc(d.Playbook)},
		{"Time to contain", mdContain(d.TimeToContainMS)},
		{"Time to sealed evidence", fmt.Sprintf("%d ms", d.TimeToSealedEvidenceMS)},
		{"Steps failed / skipped", fmt.Sprintf("%d / %d", d.StepsFailed, d.StepsSkipped)},
		{"Completeness", fmt.Sprintf("%.0f%% %s", d.Completeness*100, esc(d.CompletenessDetail))},
	})
	if len(d.Trend) > 0 {
		var rows [][]string
		for _, p := range d.Trend {
			rows = append(rows, []string{esc(p.Incident), esc(p.Started), mdContain(p.TimeToContainMS), fmt.Sprint(p.StepsFailed), fmt.Sprintf("%.0f%%", p.Completeness*100), esc(custodyOf(p))})
		}
		m.f("### Trend\n\n")
		m.table([]string{"Incident", "Started", "Time to contain", "Steps failed", "Completeness", "Custody log"}, rows)
	}
	for _, u := range d.TrendUnread {
		m.f("- Not in the trend, unreadable: %s\n", esc(u))
	}
	if len(d.TrendUnread) > 0 {
		m.f("\n")
	}
}

func (m *md) instructions(title string, l []Instruction) {
	m.f("## %s\n\n", title)
	for _, in := range l {
		m.f("**%s**\n\n```sh\n%s\n```\n\n", esc(in.Title), strings.ReplaceAll(strings.Join(in.Commands, "\n"), "```", "'''"))
		if in.Note != "" {
			m.f("%s\n\n", esc(in.Note))
		}
	}
}

func (m *md) checks(r *Report) {
	m.f("## Integrity checks\n\n")
	if len(r.Integrity.Checks) == 0 {
		m.f("No check was made.\n\n")
		return
	}
	var rows [][]string
	for _, c := range r.Integrity.Checks {
		rows = append(rows, []string{esc(c.Name), "**" + esc(c.Status) + "**", codeOr(c.Path), esc(c.Detail)})
	}
	m.table([]string{"Check", "Status", "Path", "Detail"}, rows)
}

func (m *md) custody(r *Report) {
	m.f("## Custody log\n\n")
	if len(r.Custody) == 0 {
		m.f("No custody record.\n")
		return
	}
	var rows [][]string
	for _, c := range r.Custody {
		ok := "ok"
		if !c.OK {
			ok = "**FAIL: " + esc(c.Problem) + "**"
		}
		rows = append(rows, []string{fmt.Sprint(c.Seq), esc(c.Time), esc(c.Actor), codeOr(c.Action), esc(c.What), codeOr(c.KeyID), esc(c.File), ok})
	}
	m.table([]string{"Seq", "Time", "Actor", "Action", "What", "Key", "File", "Verdict"}, rows)
}

func mdContain(ms int64) string {
	if ms == 0 {
		return notContained
	}
	return fmt.Sprintf("%d ms", ms)
}
