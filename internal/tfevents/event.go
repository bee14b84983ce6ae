package tfevents

import (
	"fmt"
	"math"

	"github.com/runferry/runferry/internal/pbwire"
	"google.golang.org/protobuf/encoding/protowire"
)

// Kind is what a Summary.Value holds.
type Kind int

// Value kinds, by the oneof field set in Summary.Value.
const (
	KindNone      Kind = iota // no value field (metadata only)
	KindSimple                // simple_value (float)
	KindImage                 // image (encoded PNG, JPEG or GIF)
	KindHistogram             // histo
	KindAudio                 // audio
	KindTensor                // tensor (TF2 summaries, plugins)
	KindOldHisto              // obsolete_old_style_histogram
)

var kindNames = [...]string{"none", "simple_value", "image", "histogram", "audio", "tensor", "old_style_histogram"}

func (k Kind) String() string { return kindNames[k] }

// Event is one decoded tensorboard.Event. Byte slices are views of the
// record the Event was decoded from, valid until that record's buffer is
// reused (the Reader's next call); Values is reused by DecodeEvent.
type Event struct {
	WallTime    float64 // seconds since the Unix epoch
	Step        int64
	FileVersion string // "brain.Event:2" in the first event of a file
	// SessionStatus is the SessionLog status when the event holds one
	// (1 START, 2 STOP, 3 CHECKPOINT), else 0.
	SessionStatus int
	HasSession    bool
	Values        []Value
	// Writer is source_metadata's writer, the name of the program that
	// wrote the file (the tensorboard package's writers name themselves).
	Writer string
	// Other names the event's fields that are not summaries, file version,
	// source metadata or session logs: "graph_def", "meta_graph_def",
	// "tagged_run_metadata", "log_message".
	Other []string
}

// Value is one Summary.Value.
type Value struct {
	Tag  []byte
	Kind Kind
	// Simple is simple_value, for KindSimple.
	Simple float32
	// Plugin and PluginContent are the metadata's plugin_data (TF2
	// summaries name their plugin only in the first event of a tag).
	Plugin        []byte
	PluginContent []byte
	DisplayName   []byte
	// Raw is the serialized image, histo, audio, tensor or old-style
	// histogram message, for DecodeImage, DecodeHistogram, DecodeTensor.
	Raw []byte
}

var otherFields = map[protowire.Number]string{4: "graph_def", 6: "log_message", 8: "tagged_run_metadata", 9: "meta_graph_def"}

// DecodeEvent decodes a serialized Event into e, reusing e's slices. On
// error e holds what was decoded before it.
func DecodeEvent(b []byte, e *Event) error {
	values := e.Values[:0]
	*e = Event{Other: e.Other[:0]}
	err := pbwire.Walk(b, func(f pbwire.Field) error {
		switch f.Num {
		case 1:
			if err := f.Want(protowire.Fixed64Type, "wall_time"); err != nil {
				return err
			}
			e.WallTime = math.Float64frombits(f.Fixed)
		case 2:
			if err := f.Want(protowire.VarintType, "step"); err != nil {
				return err
			}
			e.Step = int64(f.Varint)
		case 3:
			if err := f.Want(protowire.BytesType, "file_version"); err != nil {
				return err
			}
			e.FileVersion = string(f.Payload)
		case 5:
			if err := f.Want(protowire.BytesType, "summary"); err != nil {
				return err
			}
			return pbwire.Walk(f.Payload, func(f pbwire.Field) error {
				if f.Num != 1 {
					return nil
				}
				if err := f.Want(protowire.BytesType, "summary.value"); err != nil {
					return err
				}
				var v Value
				if err := decodeValue(f.Payload, &v); err != nil {
					return fmt.Errorf("summary value %d: %w", len(values), err)
				}
				values = append(values, v)
				return nil
			})
		case 7:
			if err := f.Want(protowire.BytesType, "session_log"); err != nil {
				return err
			}
			e.HasSession = true
			return pbwire.Walk(f.Payload, func(f pbwire.Field) error {
				if f.Num == 1 && f.Type == protowire.VarintType {
					e.SessionStatus = int(f.Varint)
				}
				return nil
			})
		case 10:
			if err := f.Want(protowire.BytesType, "source_metadata"); err != nil {
				return err
			}
			return pbwire.Walk(f.Payload, func(f pbwire.Field) error {
				if f.Num == 1 && f.Type == protowire.BytesType {
					e.Writer = string(f.Payload)
				}
				return nil
			})
		default:
			if name, ok := otherFields[f.Num]; ok {
				e.Other = append(e.Other, name)
			}
		}
		return nil
	})
	e.Values = values
	return err
}

// rawKinds maps Summary.Value's message fields to their kind.
var rawKinds = [...]Kind{3: KindOldHisto, 4: KindImage, 5: KindHistogram, 6: KindAudio, 8: KindTensor}

func decodeValue(b []byte, v *Value) error {
	return pbwire.Walk(b, func(f pbwire.Field) error {
		switch f.Num {
		case 1:
			if err := f.Want(protowire.BytesType, "tag"); err != nil {
				return err
			}
			v.Tag = f.Payload
		case 7:
			// node_name: the tag of summaries written before TF 1.0 left tag empty.
			if f.Type == protowire.BytesType && len(v.Tag) == 0 {
				v.Tag = f.Payload
			}
		case 9:
			if err := f.Want(protowire.BytesType, "metadata"); err != nil {
				return err
			}
			return pbwire.Walk(f.Payload, func(f pbwire.Field) error {
				switch {
				case f.Num == 1 && f.Type == protowire.BytesType:
					return pbwire.Walk(f.Payload, func(f pbwire.Field) error {
						if f.Type == protowire.BytesType {
							switch f.Num {
							case 1:
								v.Plugin = f.Payload
							case 2:
								v.PluginContent = f.Payload
							}
						}
						return nil
					})
				case f.Num == 2 && f.Type == protowire.BytesType:
					v.DisplayName = f.Payload
				}
				return nil
			})
		case 2:
			if err := f.Want(protowire.Fixed32Type, "simple_value"); err != nil {
				return err
			}
			v.Kind, v.Simple = KindSimple, math.Float32frombits(uint32(f.Fixed))
		case 3, 4, 5, 6, 8:
			if err := f.Want(protowire.BytesType, "value"); err != nil {
				return err
			}
			v.Kind, v.Raw = rawKinds[f.Num], f.Payload
		}
		return nil
	})
}
