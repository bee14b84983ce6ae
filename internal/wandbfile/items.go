package wandbfile

import "time"

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
	var it Item
	err := walkFields(b, func(f field) error {
		switch f.num {
		case itemFieldKey:
			return f.setStr(&it.Key)
		case itemFieldNestedKey:
			return f.appendStr(&it.NestedKey)
		case itemFieldValueJSON:
			return f.setStr(&it.ValueJSON)
		}
		return nil
	})
	return it, within("item", err)
}

// appendItem decodes an embedded item field and appends it to list.
func appendItem(f field, list *[]Item) error {
	b, err := f.message()
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

// decodeHistory decodes a HistoryRecord.
func decodeHistory(b []byte) (*History, error) {
	h := &History{}
	err := walkFields(b, func(f field) error {
		switch f.num {
		case 1:
			return appendItem(f, &h.Items)
		case 2:
			step, err := f.message()
			if err != nil {
				return err
			}
			h.Step = new(int64)
			return within("step", walkFields(step, func(g field) error {
				if g.num == 1 {
					return g.setInt64(h.Step)
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
	return walkFields(b, func(f field) error {
		switch f.num {
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
	err := walkFields(b, func(f field) error {
		switch f.num {
		case 1:
			return f.setInt32(&s.Type)
		case 2:
			return f.setTime(&s.Timestamp)
		case 3:
			return appendItem(f, &s.Items)
		}
		return nil
	})
	return s, err
}
