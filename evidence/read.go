package evidence

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"

	"path/filepath"
	"slices"
)

// CaseLog is what ReadCase found in a case folder: its custody log, each
// record checked, and the items index as OpenCase derives it from that log.
type CaseLog struct {
	// Dir is the case folder and Incident its name.
	Dir      string
	Incident string
	// Records are the custody records in log order, each with its verdict.
	Records []RecordCheck
	// OK says every record's chain link, time and (when Pinned) signature
	// verified.
	OK bool
	// Pinned says the signatures were checked against keys the caller
	// trusts. Without keys a case folder holds no public key to check them
	// with (the signer's key stays with the examiner), so only the chain
	// links and times are checked and the signatures are unchecked.
	Pinned bool
	// Items are the items index, sorted by path.
	Items []Item
}

// ReadCase reads the case folder dir without changing it and without a
// Signer: metadata/custody.jsonl is replayed record by record (chain
// link, time and, with keys, the signature of each: a record signed by a
// key outside keys fails) and the items are indexed exactly as OpenCase
// indexes them. Problems with the records are verdicts in the result; the
// error is for a folder that is not a case or cannot be read.
func ReadCase(ctx context.Context, dir string, keys KeyRing) (*CaseLog, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p := filepath.Join(dir, "metadata", "custody.jsonl")
	data, err := readLimited(p, maxListTag)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, invalidErr(err, "give the incident's case folder (it holds metadata/custody.jsonl)", "%s is not a case folder", dir)
	}
	if err != nil {
		return nil, fmt.Errorf("read custody log: %w", err)
	}
	cl := &CaseLog{Dir: dir, Incident: filepath.Base(filepath.Clean(dir)), Pinned: len(keys) > 0}
	var ring KeyRing // nil: links only
	if cl.Pinned {
		ring = keys
	}
	var res ChainResult
	if err := replayChain(bytes.NewReader(data), custodyJSONL, emptyHead(), "", ring, maxListTag, &res); err != nil {
		return nil, fmt.Errorf("read custody log: %w", err)
	}
	cl.Records, cl.OK = res.Records, res.OK
	recs := make([]Record, 0, len(res.Records))
	for _, rc := range res.Records {
		recs = append(recs, rc.Record)
	}
	if cl.Items, err = ItemsFromRecords(recs); err != nil {
		return nil, err
	}
	return cl, nil
}

// ItemsFromRecords indexes custody records into items, sorted by path,
// exactly as OpenCase does: for a sealed archive's custody log.
func ItemsFromRecords(recs []Record) ([]Item, error) {
	items, err := indexRecords(recs)
	if err != nil {
		return nil, err
	}
	out := make([]Item, 0, len(items))
	for _, k := range slices.Sorted(maps.Keys(items)) {
		out = append(out, items[k])
	}
	return out, nil
}
