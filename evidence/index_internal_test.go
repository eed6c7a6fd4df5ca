package evidence

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
)

// TestMarshalIndexParts checks that an index large enough to be encoded in
// parts is byte for byte the one-part encoding, and valid JSON.
func TestMarshalIndexParts(t *testing.T) {
	items := make([]Item, 25001)
	for i := range items {
		items[i] = Item{Path: fmt.Sprintf("data/f%06d", i), Status: StatusCollected, Size: int64(i), SHA256: SumHex([]byte{byte(i)})}
	}
	got, err := MarshalIndex(Index{Incident: "IR-1", Items: items})
	if err != nil {
		t.Fatal(err)
	}
	one, err := encodeItems(items, true)
	if err != nil {
		t.Fatal(err)
	}
	want := append(append([]byte(`{"incident":"IR-1","items":[`), one...), "\n]}\n"...)
	if !bytes.Equal(got, want) {
		t.Fatalf("index encoded in parts differs from the one-part encoding (%d vs %d bytes)", len(got), len(want))
	}
	var back Index
	if err := json.Unmarshal(got, &back); err != nil || len(back.Items) != len(items) || back.Items[25000].Path != "data/f025000" {
		t.Fatalf("index does not decode back: %v (%d items)", err, len(back.Items))
	}
}
