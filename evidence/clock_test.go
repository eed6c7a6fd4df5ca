package evidence_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/eksir/eksir/evidence"
)

// fixedClock returns a clock that reads t, then advances a millisecond per
// call.
func fixedClock(t time.Time) func() time.Time {
	return func() time.Time { t = t.Add(time.Millisecond); return t }
}

// TestCustodyNeverRunsBackwards: with the clock behind the last record,
// Record, Add and NotCollected refuse, naming both times, and change
// nothing (item 6).
func TestCustodyNeverRunsBackwards(t *testing.T) {
	signer, _ := newSigner(t)
	dir := t.TempDir()
	later := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	open := func(now time.Time) *evidence.Case {
		c, err := evidence.OpenCase(context.Background(), evidence.CaseOptions{Dir: dir, Incident: "CLOCK", Signer: signer, Actor: "t", Now: fixedClock(now)})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := open(later)
	add(t, c, "a.txt", "a\n")
	c.Close()
	before := readFile(t, custodyPath(c))

	c = open(later.Add(-time.Hour))
	defer c.Close()
	check := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, evidence.ErrClockBackwards) || !errors.Is(err, evidence.ErrInvalidInput) {
			t.Errorf("%s with the clock behind: %v, want ErrClockBackwards", what, err)
			return
		}
		if !strings.Contains(err.Error(), "2026-06-01T11:") || !strings.Contains(err.Error(), "2026-06-01T12:") {
			t.Errorf("%s: error does not name both times: %v", what, err)
		}
	}
	_, err := c.Record("step", map[string]string{"x": "y"}, nil)
	check("Record", err)
	_, err = c.Add(context.Background(), "b.txt", evidence.ItemInfo{}, stringReader("b\n"))
	check("Add", err)
	_, err = c.NotCollected("c.txt", evidence.ItemInfo{}, "refused")
	check("NotCollected", err)
	if after := readFile(t, custodyPath(c)); !bytes.Equal(after, before) {
		t.Error("custody log changed")
	}
	if u, err := c.Unrecorded(context.Background()); err != nil || len(u.Files) > 0 {
		t.Errorf("a refused Add left a file in data/: %+v %v", u, err)
	}
	// The seal, dated by the clock, is refused too.
	opts := sealOpts(signer, t.TempDir(), evidence.CompressNone)
	opts.SealTime, opts.Now = time.Time{}, fixedClock(later.Add(-time.Hour))
	_, err = evidence.SealCase(context.Background(), c, opts)
	check("SealCase", err)
}

// TestHandOverNeverRunsBackwards: a hand-over dated before the seal is
// refused and not written.
func TestHandOverNeverRunsBackwards(t *testing.T) {
	signer, keys := newSigner(t)
	c := openCase(t, t.TempDir(), "HCLOCK", signer)
	add(t, c, "a.txt", "a\n")
	res, err := evidence.SealCase(context.Background(), c, sealOpts(signer, t.TempDir(), evidence.CompressNone))
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	h := evidence.HandOver{From: "a", To: "b", Reason: "r"}
	_, _, err = evidence.RecordHandOver(context.Background(), res.Archive, evidence.ActionTransferred, h, signer, "t", sealAt.Add(-time.Second), evidence.VerifyOptions{Keys: keys})
	if !errors.Is(err, evidence.ErrInvalidInput) || !strings.Contains(err.Error(), "before the last custody record") {
		t.Fatalf("hand-over before the seal: %v", err)
	}
	if _, err := os.Stat(res.Archive + ".custody.jsonl"); err == nil {
		t.Error("a refused hand-over wrote the hand-over log")
	}
	if _, _, err := evidence.RecordHandOver(context.Background(), res.Archive, evidence.ActionTransferred, h, signer, "t", sealAt, evidence.VerifyOptions{Keys: keys}); err != nil {
		t.Fatal(err)
	}
}
