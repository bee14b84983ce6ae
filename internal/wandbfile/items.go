package wandbfile

import (
	"time"

	"github.com/runferry/runferry/internal/pbwire"
	"google.golang.org/protobuf/encoding/protowire"
)

// Item is one key/value entry of a history, summary, config or stats record
// (HistoryItem, SummaryItem, ConfigItem, StatsItem share this shape). Exactly
// one of Key and NestedKey is normally set: legacy Python writers use Key,
// wandb-core (0.17.5+) uses NestedKey even for top-level keys.
type Item struct {
	Key       string   `json:"key,omitempty"`
	NestedKey []string `json:"nested_key,omitempty"`
	// ValueJSON is the value as W&B's extended JSON (it may hold bare NaN,
	// Infinity, -Infinity); parse it with ParseValueJSON.
	ValueJSON string `json:"value_json"`
}

// Path returns the item's key path: NestedKey when it is non-empty,
// otherwise the single-element path [Key]. The result may share memory with
// the item.
func (it Item) Path() []string {
	if len(it.NestedKey) > 0 {
		return it.NestedKey
	}
	return []string{it.Key}
}

// IsKey reports whether the item's path is exactly the single segment name,
// whichever encoding it uses (for example "_step").
func (it Item) IsKey(name string) bool {
	if len(it.NestedKey) > 0 {
		return len(it.NestedKey) == 1 && it.NestedKey[0] == name
	}
	return it.Key == name
}

// History is a HistoryRecord: one row of logged values.
type History struct {
	Items []Item `json:"items"`
	// Step is HistoryRecord.step.num, nil when the record has no step
	// field. Prefer the "_step" item (see StepValue), which writers set too.
	Step *int64 `json:"step,omitempty"`
}

// StepValue returns the row's step: the integer value of its "_step" item,
// else *Step. ok is false when the row has neither (as in
// W&B's shared multi-writer mode, where the server assigns steps) or the
// "_step" item is not an integer.
func (h *History) StepValue() (step int64, ok bool) {
	for _, it := range h.Items {
		if it.IsKey("_step") {
			return parseStep(it.ValueJSON)
		}
	}
	if h.Step != nil {
		return *h.Step, true
	}
	return 0, false
}

// Summary is a SummaryRecord: values to set and keys to remove from the run
// summary, applied in that order.
type Summary struct {
	Update []Item `json:"update,omitempty"`
	Remove []Item `json:"remove,omitempty"`
}

// Config is a ConfigRecord (also RunRecord.config): config values to set and
// keys to remove, applied in that order.
type Config struct {
	Update []Item `json:"update,omitempty"`
	Remove []Item `json:"remove,omitempty"`
}

// Stats is a StatsRecord: one sample of system metrics. Item keys are the
// raw monitor names ("cpu", "gpu.0.temp"); W&B's UI shows them with a
// "system." prefix.
type Stats struct {
	// Type is StatsRecord.stats_type; 0 (SYSTEM) is the only value so far.
	Type      int32     `json:"type,omitempty"`
	Timestamp time.Time `json:"timestamp,omitzero"`
	Items     []Item    `json:"items"`
}

// Field numbers shared by HistoryItem, SummaryItem, ConfigItem and StatsItem.
const (
	itemFieldKey       = 1
	itemFieldNestedKey = 2
	itemFieldValueJSON = 16
)

// decodeItem decodes one item message.
func decodeItem(b []byte) (Item, error) {
	keys := itemKeys{rec: b}
	return keys.decodeItem(b)
}

// itemKeys is the shared backing array of the NestedKey slices of the items
// of one record, so that decoding a row of N items does not allocate N tiny
// slices. Each item's NestedKey is a full slice expression of it, so
// appending to one never overwrites the next.
type itemKeys struct {
	buf []string
	// rec and recStr are the record message the items are part of and, once
	// made, a string copy of it (see decodeItem).
	rec    []byte
	recStr string
}

// decodeItem decodes one item message b, which must be a part of k.rec.
// Values (value_json) are substrings of one string copy of k.rec, made on
// first use, so a row's values cost one allocation; keys, which callers keep
// (as metric keys, for instance), are copied on their own so they never pin
// a whole record.
func (k *itemKeys) decodeItem(b []byte) (Item, error) {
	var it Item
	start := len(k.buf)
	err := pbwire.Walk(b, func(f pbwire.Field) error {
		switch f.Num {
		case itemFieldKey:
			return f.SetStr(&it.Key)
		case itemFieldNestedKey:
			s, err := f.Str()
			k.buf = append(k.buf, s)
			return err
		case itemFieldValueJSON:
			v, err := f.Message() // the bytes, with the wire type checked
			if err != nil {
				return err
			}
			it.ValueJSON = k.substring(v)
			return nil
		}
		return nil
	})
	if end := len(k.buf); end > start {
		it.NestedKey = k.buf[start:end:end]
	}
	return it, within("item", err)
}

// substring returns the bytes of v, a subslice of k.rec, as a substring of
// the string copy of k.rec. Subslices made by slicing share the end of
// their backing array, so the difference of capacities is v's offset.
func (k *itemKeys) substring(v []byte) string {
	if k.recStr == "" {
		k.recStr = string(k.rec)
	}
	off := cap(k.rec) - cap(v)
	return k.recStr[off : off+len(v)]
}

// countField returns how many fields numbered num the message b holds at
// its top level. It stops quietly at malformed bytes: the decoder that
// follows reports them.
func countField(b []byte, num protowire.Number) int {
	n := 0
	for len(b) > 0 {
		fnum, typ, m := protowire.ConsumeTag(b)
		if m < 0 {
			return n
		}
		b = b[m:]
		m = protowire.ConsumeFieldValue(fnum, typ, b)
		if m < 0 {
			return n
		}
		b = b[m:]
		if fnum == num {
			n++
		}
	}
	return n
}

// appendItem decodes an embedded item field and appends it to list.
func appendItem(f pbwire.Field, list *[]Item) error {
	b, err := f.Message()
	if err != nil {
		return err
	}
	it, err := decodeItem(b)
	if err != nil {
		return err
	}
	*list = append(*list, it)
	return nil
}

// decodeHistory decodes a HistoryRecord. Rows are the bulk of every file,
// so it sizes the item slice and the shared key array up front.
func decodeHistory(b []byte) (*History, error) {
	n := countField(b, 1)
	h := &History{Items: make([]Item, 0, n)}
	keys := itemKeys{buf: make([]string, 0, n), rec: b}
	err := pbwire.Walk(b, func(f pbwire.Field) error {
		switch f.Num {
		case 1:
			m, err := f.Message()
			if err != nil {
				return err
			}
			it, err := keys.decodeItem(m)
			if err != nil {
				return err
			}
			h.Items = append(h.Items, it)
			return nil
		case 2:
			step, err := f.Message()
			if err != nil {
				return err
			}
			h.Step = new(int64)
			return within("step", pbwire.Walk(step, func(g pbwire.Field) error {
				if g.Num == 1 {
					return g.SetInt64(h.Step)
				}
				return nil
			}))
		}
		return nil
	})
	return h, err
}

// decodeUpdateRemove decodes the shared shape of SummaryRecord and
// ConfigRecord: 1 update (repeated item), 2 remove (repeated item).
func decodeUpdateRemove(b []byte, update, remove *[]Item) error {
	return pbwire.Walk(b, func(f pbwire.Field) error {
		switch f.Num {
		case 1:
			return within("update", appendItem(f, update))
		case 2:
			return within("remove", appendItem(f, remove))
		}
		return nil
	})
}

// decodeSummary decodes a SummaryRecord.
func decodeSummary(b []byte) (*Summary, error) {
	s := &Summary{}
	return s, decodeUpdateRemove(b, &s.Update, &s.Remove)
}

// decodeConfig decodes a ConfigRecord.
func decodeConfig(b []byte) (*Config, error) {
	c := &Config{}
	return c, decodeUpdateRemove(b, &c.Update, &c.Remove)
}

// decodeStats decodes a StatsRecord.
func decodeStats(b []byte) (*Stats, error) {
	s := &Stats{}
	err := pbwire.Walk(b, func(f pbwire.Field) error {
		switch f.Num {
		case 1:
			return f.SetInt32(&s.Type)
		case 2:
			return f.SetTime(&s.Timestamp)
		case 3:
			return appendItem(f, &s.Items)
		}
		return nil
	})
	return s, err
}
