package report

import (
	"bufio"
	"cmp"
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The page is one template with its stylesheet inline: a report handed to
// a lab or attached to a ticket must open the same way anywhere, offline,
// years later, so nothing is loaded from outside the file and nothing
// needs JavaScript.
//
//go:embed html.tmpl
var htmlTemplateText string

var htmlTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"bytes":      humanBytes,
	"ms":         humanMS,
	"contain":    containTime,
	"percent":    func(f float64) string { return strconv.FormatFloat(f*100, 'f', 0, 64) + "%" },
	"join":       strings.Join,
	"checkClass": checkClass,
	"stclass":    statusClass,
	"mod2":       func(i int) int { return i % 2 },
	"after":      trimShared,
	"stepName":   stepName,
}).Parse(htmlTemplateText))

// stepName is a step's ID as the steps table shows it: in a run over many
// targets the engine names a step ID@POD, and the table's Target column
// already says the pod, so the ID is shown without it.
func stepName(s Step) string {
	if id, target, ok := strings.Cut(s.ID, "@"); ok && target != "" && strings.HasSuffix(s.Target, target) {
		return id
	}
	return s.ID
}

// RenderHTML writes r as one self-contained HTML page: inline CSS (light,
// dark and print), an SVG timeline and drill trend drawn on the server, no
// script and no reference to anything outside the page. Long lists are
// grouped in collapsible sections so a case of a thousand pods stays
// readable. A tampered source is announced before anything else.
func RenderHTML(w io.Writer, r *Report) error {
	if r == nil {
		return fmt.Errorf("render html: no report")
	}
	// The template writes in thousands of small pieces; buffered, a file
	// gets them in a few large writes.
	bw := bufio.NewWriterSize(w, 64<<10)
	if err := htmlTemplate.Execute(bw, newHTMLView(r)); err != nil {
		return fmt.Errorf("render html: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("render html: %w", err)
	}
	return nil
}

// Above these counts a section starts collapsed: a small case reads at a
// glance, a large one as a list of groups to open.
const (
	openRowsUpTo     = 60
	openGroupsUpTo   = 12
	timelineRowsUpTo = 60
	custodyPerChunk  = 500
	// printExpandRowsUpTo bounds what a printout expands: a thousand-pod
	// case would print a thousand pages, which Chromium takes minutes to
	// lay out and nobody reads. Above it the long lists print as their
	// group lines and the page says where the rows are.
	printExpandRowsUpTo = 3000
)

// htmlView is what the template shows, computed once so the template only
// lays it out.
type htmlView struct {
	*Report
	Title          string
	Tampered       bool
	Unpinned       bool
	FailedChecks   []Check
	TargetsByKind  []targetKind
	Containment    []containGroup
	ContainOpen    bool
	Chart          timelineChart
	StepGroups     []stepGroup
	StepsOpen      bool
	EvidenceGroups []evidenceGroup
	EvidenceOpen   bool
	EvidenceBytes  int64
	// EvidenceBy and EvidenceTool are set when every item shares them.
	EvidenceBy     string
	EvidenceTool   string
	CustodyProblem []CustodyEntry
	// CustodyActor, CustodyKey and CustodyFile are set when every record
	// shares them, which is the usual case: then they are said once.
	CustodyActor  string
	CustodyKey    string
	CustodyFile   string
	CustodyChunks []custodyChunk
	CustodyOpen   bool
	Trend         *trendChart
	// PrintExpand opens every collapsed group in print.
	PrintExpand bool
}

type targetKind struct {
	Kind  string
	Names []string
}

// containGroup is the containment of one action over its targets.
type containGroup struct {
	Action       string
	Rows         []Containment
	StillInPlace int
	Failed       int
}

// stepGroup is every step of one action: a thousand pods make a few
// groups of a thousand rows rather than a thousand tables.
type stepGroup struct {
	Action     string
	Steps      []Step
	Failed     int
	DatePrefix string
}

// evidenceGroup is the evidence of one Item.Group. A collector or tool shared
// by every item is said once above the table instead of on every row.
type evidenceGroup struct {
	Group      string
	Items      []Item
	Bytes      int64
	CommonBy   string
	CommonTool string
	// The prefix every row's path, source and acquisition time shares,
	// said once above the table; rows show the rest. In a thousand-pod
	// case this is most of each row.
	PathPrefix   string
	SourcePrefix string
	DatePrefix   string
}

type custodyChunk struct {
	First, Last int64
	Records     []CustodyEntry
	DatePrefix  string
}

func newHTMLView(r *Report) *htmlView {
	v := &htmlView{Report: r}
	v.Title = "Incident report " + cmp.Or(r.Summary.Incident, r.Source.Incident, "(no incident)")
	v.Tampered = r.Integrity.Status == IntegrityTampered
	v.Unpinned = r.Integrity.Status == IntegrityUnpinned
	for _, c := range r.Integrity.Checks {
		if checkClass(c.Status) == "bad" {
			v.FailedChecks = append(v.FailedChecks, c)
		}
	}
	v.TargetsByKind = groupTargets(r.Summary.Targets)

	v.Containment = groupBy(r.Containment, func(c Containment) string { return c.Action },
		func(key string, rows []Containment) containGroup {
			g := containGroup{Action: key, Rows: rows}
			for _, c := range rows {
				if c.StillInPlace {
					g.StillInPlace++
				}
				if c.State == ContainFailed || c.State == ContainInDoubt {
					g.Failed++
				}
			}
			return g
		})
	v.ContainOpen = len(r.Containment) <= openRowsUpTo

	v.Chart = newTimelineChart(r.Timeline)
	v.StepGroups = groupBy(r.Timeline, func(s Step) string { return s.Action },
		func(key string, steps []Step) stepGroup {
			g := stepGroup{Action: key, Steps: steps, DatePrefix: datePrefix(steps, func(s Step) string { return s.Started })}
			for _, s := range steps {
				if s.Status == "failed" || s.Status == "in-doubt" {
					g.Failed++
				}
			}
			return g
		})
	v.StepsOpen = len(r.Timeline) <= openRowsUpTo

	v.EvidenceBy = common(r.Evidence, func(it Item) string { return it.By })
	v.EvidenceTool = common(r.Evidence, func(it Item) string { return it.Tool })
	v.EvidenceGroups = groupBy(r.Evidence, func(it Item) string { return cmp.Or(it.Group, "(ungrouped)") },
		func(key string, items []Item) evidenceGroup {
			g := evidenceGroup{Group: key, Items: items}
			for _, it := range items {
				g.Bytes += it.Size
			}
			if v.EvidenceBy == "" {
				g.CommonBy = common(items, func(it Item) string { return it.By })
			}
			if v.EvidenceTool == "" {
				g.CommonTool = common(items, func(it Item) string { return it.Tool })
			}
			if len(items) > 1 {
				g.PathPrefix = dirPrefix(items, func(it Item) string { return it.Path })
				g.SourcePrefix = listPrefix(items, func(it Item) string { return it.Source })
				g.DatePrefix = datePrefix(items, func(it Item) string { return it.AcquiredAt })
			}
			return g
		})
	for _, g := range v.EvidenceGroups {
		v.EvidenceBytes += g.Bytes
	}
	v.EvidenceOpen = len(v.EvidenceGroups) <= openGroupsUpTo && len(r.Evidence) <= 2*openRowsUpTo

	for _, c := range r.Custody {
		if !c.OK {
			v.CustodyProblem = append(v.CustodyProblem, c)
		}
	}
	v.CustodyActor = common(r.Custody, func(c CustodyEntry) string { return c.Actor })
	v.CustodyKey = common(r.Custody, func(c CustodyEntry) string { return c.KeyID })
	v.CustodyFile = common(r.Custody, func(c CustodyEntry) string { return c.File })
	for chunk := range slices.Chunk(r.Custody, custodyPerChunk) {
		v.CustodyChunks = append(v.CustodyChunks, custodyChunk{First: chunk[0].Seq, Last: chunk[len(chunk)-1].Seq, Records: chunk,
			DatePrefix: datePrefix(chunk, func(c CustodyEntry) string { return c.Time })})
	}
	v.CustodyOpen = len(r.Custody) <= custodyPerChunk/10

	v.PrintExpand = len(r.Containment)+len(r.Timeline)+len(r.Evidence)+len(r.Custody)+len(r.Snapshots) <= printExpandRowsUpTo
	if r.Drill != nil && len(r.Drill.Trend) >= 2 {
		v.Trend = newTrendChart(r.Drill.Trend)
	}
	return v
}

// groupBy groups rows by key in the order keys first appear, so the page
// follows the model's order.
func groupBy[T, G any](rows []T, key func(T) string, build func(string, []T) G) []G {
	var order []string
	byKey := map[string][]T{}
	for _, row := range rows {
		k := key(row)
		if _, seen := byKey[k]; !seen {
			order = append(order, k)
		}
		byKey[k] = append(byKey[k], row)
	}
	out := make([]G, 0, len(order))
	for _, k := range order {
		out = append(out, build(k, byKey[k]))
	}
	return out
}

// common returns the value every row has for field, or "" when they differ
// (or there is no row).
func common[T any](rows []T, field func(T) string) string {
	if len(rows) == 0 {
		return ""
	}
	v := field(rows[0])
	for _, row := range rows[1:] {
		if field(row) != v {
			return ""
		}
	}
	return v
}

// dirPrefix is the folder every row's value (a slash-separated path) is
// under, ending in "/", or "".
func dirPrefix[T any](rows []T, field func(T) string) string {
	p := lcp(rows, field)
	return p[:strings.LastIndex(p, "/")+1]
}

// listPrefix is the leading ", "-separated elements every row's value
// shares, or "".
func listPrefix[T any](rows []T, field func(T) string) string {
	p := lcp(rows, field)
	for _, row := range rows {
		if rest := strings.TrimPrefix(field(row), p); rest != "" && !strings.HasPrefix(rest, ", ") {
			if i := strings.LastIndex(p, ", "); i >= 0 {
				return p[:i]
			}
			return ""
		}
	}
	return p
}

// datePrefix is the date and "T" every row's RFC 3339 time shares, or "".
func datePrefix[T any](rows []T, field func(T) string) string {
	p := lcp(rows, field)
	if len(p) < len("2006-01-02T") || p[10] != 'T' {
		return ""
	}
	return p[:len("2006-01-02T")]
}

// lcp is the longest prefix of every row's value.
func lcp[T any](rows []T, field func(T) string) string {
	if len(rows) == 0 {
		return ""
	}
	p := field(rows[0])
	for _, row := range rows[1:] {
		v := field(row)
		n := 0
		for n < len(p) && n < len(v) && p[n] == v[n] {
			n++
		}
		p = p[:n]
	}
	return p
}

func groupTargets(ts []Target) []targetKind {
	return groupBy(ts, func(t Target) string { return t.Kind }, func(kind string, ts []Target) targetKind {
		g := targetKind{Kind: kind}
		for _, t := range ts {
			g.Names = append(g.Names, t.Name)
		}
		return g
	})
}

// Timeline geometry, in SVG user units (the SVG scales to the page width).
const (
	chartWidth   = 960
	labelWidth   = 300
	statusWidth  = 110
	barAreaWidth = chartWidth - labelWidth - statusWidth - 20
	rowHeight    = 22
	laneHeight   = 6
	axisHeight   = 28
)

// timelineChart is the SVG timeline. A small run gets a labelled row per
// step. A large one packs its bars into lanes per action and status, each
// lane group labelled with both, so a thousand parallel steps stay one
// screen tall and status is never told by colour alone.
type timelineChart struct {
	Width, Height int
	Packed        bool
	Span          string
	Ticks         []tick
	Rows          []chartRow
	// Bars are in runs of one class, each run drawn as one <g>, so a
	// thousand bars do not repeat their class a thousand times.
	Bars    []barRun
	Undrawn int
	Desc    string
}

type tick struct {
	X     float64
	Label string
}

// chartRow is a labelled band: one step, or one action+status lane group.
type chartRow struct {
	Y, H, TextY float64
	Label       string
	Status      string
	Class       string
	StatusX     float64
}

type chartBar struct {
	X, Y, W, H float64
	Title      string
}

type barRun struct {
	Class string
	Bars  []chartBar
}

func (c *timelineChart) addBar(class string, b chartBar) {
	if n := len(c.Bars); n > 0 && c.Bars[n-1].Class == class {
		c.Bars[n-1].Bars = append(c.Bars[n-1].Bars, b)
		return
	}
	c.Bars = append(c.Bars, barRun{Class: class, Bars: []chartBar{b}})
}

// checkClass maps a verification check's status (evidence.Verify's ok,
// warn and fail) to a colour class; anything unknown counts as failed.
func checkClass(status string) string {
	switch status {
	case "ok":
		return "ok"
	case "warn":
		return "warn"
	default:
		return "bad"
	}
}

// trimShared is a row's value without the prefix said once above its
// table (and the ", " that joined them).
func trimShared(s, prefix string) string {
	if prefix == "" {
		return s
	}
	return strings.TrimPrefix(strings.TrimPrefix(s, prefix), ", ")
}

func statusClass(status string) string {
	switch status {
	case "succeeded", "released", "applied":
		return "ok"
	case "failed":
		return "bad"
	case "in-doubt", "needs-approval", "interrupted":
		return "warn"
	default:
		return "other"
	}
}

type timedStep struct {
	Step
	start, end time.Time
}

func newTimelineChart(steps []Step) timelineChart {
	c := timelineChart{Width: chartWidth}
	var timed []timedStep
	for _, s := range steps {
		start, err1 := time.Parse(time.RFC3339Nano, s.Started)
		end, err2 := time.Parse(time.RFC3339Nano, s.Finished)
		if err1 != nil {
			c.Undrawn++
			continue
		}
		if err2 != nil || end.Before(start) {
			end = start
		}
		timed = append(timed, timedStep{Step: s, start: start, end: end})
	}
	if len(timed) == 0 {
		c.Height = axisHeight
		c.Desc = "No step has a start time, so there is nothing to draw."
		return c
	}
	t0, t1 := timed[0].start, timed[0].end
	for _, s := range timed {
		t0 = minTime(t0, s.start)
		t1 = maxTime(t1, s.end)
	}
	span := t1.Sub(t0)
	if span <= 0 {
		span = time.Second
	}
	c.Span = humanMS(span.Milliseconds())
	x := func(t time.Time) float64 {
		return round1(labelWidth + float64(t.Sub(t0))/float64(span)*barAreaWidth)
	}
	width := func(s timedStep) float64 { return max(round1(x(s.end)-x(s.start)), 1.5) }
	for i := 0; i <= 4; i++ {
		d := span * time.Duration(i) / 4
		label := "+" + humanMS(d.Milliseconds())
		if i == 0 {
			label = "start"
		}
		c.Ticks = append(c.Ticks, tick{X: round1(labelWidth + float64(i)*barAreaWidth/4), Label: label})
	}

	statusX := float64(labelWidth + barAreaWidth + 10)
	y := float64(axisHeight)
	if len(timed) <= timelineRowsUpTo {
		for _, s := range timed {
			label := s.ID
			if s.Target != "" && !strings.Contains(s.ID, s.Target) {
				label += " · " + s.Target
			}
			c.Rows = append(c.Rows, chartRow{Y: y, H: rowHeight, TextY: y + 15, Label: clip(label, 44), Status: s.Status, Class: statusClass(s.Status), StatusX: statusX})
			c.addBar(statusClass(s.Status), chartBar{X: x(s.start), Y: y + 4, W: width(s), H: rowHeight - 8,
				Title: fmt.Sprintf("%s: %s, %s, %s", s.ID, s.Status, s.Started, humanMS(s.DurationMS))})
			y += rowHeight
		}
	} else {
		c.Packed = true
		groups := groupBy(timed, func(s timedStep) string { return s.Action + "\x00" + s.Status },
			func(_ string, ss []timedStep) []timedStep { return ss })
		for _, ss := range groups {
			slices.SortStableFunc(ss, func(a, b timedStep) int { return a.start.Compare(b.start) })
			// Greedy interval packing: each bar goes to the first lane
			// free at its start.
			var laneEnds []time.Time
			lanes := make([]int, len(ss))
			for i, s := range ss {
				lane := slices.IndexFunc(laneEnds, func(end time.Time) bool { return !end.After(s.start) })
				if lane < 0 {
					lane = len(laneEnds)
					laneEnds = append(laneEnds, s.end)
				} else {
					laneEnds[lane] = s.end
				}
				lanes[i] = lane
			}
			h := max(float64(len(laneEnds)*laneHeight+6), rowHeight)
			label := fmt.Sprintf("%s (%d)", ss[0].Action, len(ss))
			c.Rows = append(c.Rows, chartRow{Y: y, H: h, TextY: y + 15, Label: clip(label, 44), Status: ss[0].Status, Class: statusClass(ss[0].Status), StatusX: statusX})
			for i, s := range ss {
				c.addBar(statusClass(s.Status), chartBar{X: x(s.start), Y: y + 3 + float64(lanes[i]*laneHeight), W: width(s), H: laneHeight - 1})
			}
			y += h
		}
	}
	c.Height = int(math.Ceil(y)) + 4
	c.Desc = fmt.Sprintf("%d steps over %s, from %s to %s.", len(timed), c.Span, t0.UTC().Format(time.RFC3339), t1.UTC().Format(time.RFC3339))
	if c.Packed {
		c.Desc += " Steps are grouped by action and status, one band per group, their bars stacked in lanes where they ran in parallel."
	}
	if c.Undrawn > 0 {
		c.Desc += fmt.Sprintf(" %d steps without a start time are only in the table.", c.Undrawn)
	}
	return c
}

// trendChart is the drill trend: time to contain per drill, oldest first.
type trendChart struct {
	Width, Height int
	Points        []trendPoint
	Polyline      string
	MaxLabel      string
	Desc          string
}

type trendPoint struct {
	X, Y   float64
	Label  string
	Value  string
	LabelY float64
}

func newTrendChart(points []DrillPoint) *trendChart {
	const w, h, left, right, top, bottom = 480, 180, 60, 20, 20, 40
	c := &trendChart{Width: w, Height: h}
	var hi int64 = 1
	for _, p := range points {
		hi = max(hi, p.TimeToContainMS)
	}
	c.MaxLabel = humanMS(hi)
	var pts []string
	for i, p := range points {
		x := round1(left + float64(i)*float64(w-left-right)/float64(len(points)-1))
		y := round1(top + (1-float64(p.TimeToContainMS)/float64(hi))*float64(h-top-bottom))
		if p.TimeToContainMS == 0 { // not contained: at the top, the worst
			y = top
		}
		c.Points = append(c.Points, trendPoint{X: x, Y: y, Label: clip(p.Incident, 14), Value: containTime(p.TimeToContainMS), LabelY: max(y-6, 12)})
		pts = append(pts, strconv.FormatFloat(x, 'f', -1, 64)+","+strconv.FormatFloat(y, 'f', -1, 64))
	}
	c.Polyline = strings.Join(pts, " ")
	first, last := points[0], points[len(points)-1]
	c.Desc = fmt.Sprintf("Time to contain over %d drills, from %s (%s) to %s (%s).", len(points), containTime(first.TimeToContainMS), first.Incident, containTime(last.TimeToContainMS), last.Incident)
	return c
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func round1(f float64) float64 { return math.Round(f*10) / 10 }

// clip shortens a label to n runes, so an SVG label never runs over its bar.
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return strconv.FormatFloat(float64(n)/float64(div), 'f', 1, 64) + " " + string("KMGTPE"[exp]) + "iB"
}

// containTime is a drill's time to contain; 0 is a drill in which no
// containment step succeeded, never the fastest one.
func containTime(ms int64) string {
	if ms == 0 {
		return notContained
	}
	return humanMS(ms)
}

const notContained = "not contained"

func humanMS(ms int64) string {
	d := time.Duration(ms) * time.Millisecond
	switch {
	case d < time.Second:
		return strconv.FormatInt(ms, 10) + " ms"
	case d < time.Minute:
		return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + " s"
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	default:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
}
