package tfevents

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"

	"github.com/runferry/runferry/internal/pbwire"
	"google.golang.org/protobuf/encoding/protowire"
)

// Plugin names and the hparams plugin's tags.
const (
	PluginScalars    = "scalars"
	PluginText       = "text"
	PluginHParams    = "hparams"
	PluginHistograms = "histograms"
	PluginImages     = "images"

	TagSessionStart = "_hparams_/session_start_info"
	TagSessionEnd   = "_hparams_/session_end_info"
	TagExperiment   = "_hparams_/experiment"
)

// HParams is the hparams plugin's data (HParamsPluginData) from one
// summary's metadata content. Exactly one part is set.
type HParams struct {
	// Start is session_start_info: hyperparameters (values as JSON
	// text: a number, string, bool, null, list or object), group and start
	// time.
	Start *SessionStart
	// End is session_end_info.
	End *SessionEnd
	// Experiment is the experiment summary: the hyperparameter and metric
	// names it declares (kept as names only).
	Experiment *HPExperiment
}

// SessionStart is hparams' SessionStartInfo.
type SessionStart struct {
	HParams       map[string]string // name -> JSON value
	ModelURI      string
	MonitorURL    string
	GroupName     string
	StartTimeSecs float64
}

// Session end statuses (hparams' Status).
const (
	StatusUnknown = 0
	StatusSuccess = 1
	StatusFailure = 2
	StatusRunning = 3
)

// SessionEnd is hparams' SessionEndInfo.
type SessionEnd struct {
	Status      int
	EndTimeSecs float64
}

// HPExperiment is hparams' Experiment, reduced to what runferry keeps.
type HPExperiment struct {
	Name, Description, User string
	TimeCreatedSecs         float64
	HParamNames             []string
	MetricTags              []string // "GROUP/TAG" or "TAG"
}

// DecodeHParams decodes the hparams plugin's metadata content.
func DecodeHParams(b []byte) (HParams, error) {
	var h HParams
	err := pbwire.Walk(b, func(f pbwire.Field) error {
		if f.Type != protowire.BytesType {
			return nil
		}
		switch f.Num {
		case 2:
			e, err := decodeHPExperiment(f.Payload)
			h.Experiment = &e
			return err
		case 3:
			s, err := decodeSessionStart(f.Payload)
			h.Start = &s
			return err
		case 4:
			var s SessionEnd
			h.End = &s
			return pbwire.Walk(f.Payload, func(f pbwire.Field) error {
				switch {
				case f.Num == 1 && f.Type == protowire.VarintType:
					s.Status = int(f.Varint)
				case f.Num == 2 && f.Type == protowire.Fixed64Type:
					s.EndTimeSecs = math.Float64frombits(f.Fixed)
				}
				return nil
			})
		}
		return nil
	})
	return h, err
}

func decodeSessionStart(b []byte) (SessionStart, error) {
	s := SessionStart{HParams: map[string]string{}}
	err := pbwire.Walk(b, func(f pbwire.Field) error {
		switch {
		case f.Num == 1 && f.Type == protowire.BytesType:
			var key string
			val := "null"
			if err := pbwire.Walk(f.Payload, func(f pbwire.Field) error {
				if f.Type != protowire.BytesType {
					return nil
				}
				switch f.Num {
				case 1:
					key = string(f.Payload)
				case 2:
					v, err := structValue(f.Payload)
					if err != nil {
						return err
					}
					val = string(v)
				}
				return nil
			}); err != nil {
				return fmt.Errorf("hparams entry: %w", err)
			}
			s.HParams[key] = val
		case f.Num == 2 && f.Type == protowire.BytesType:
			s.ModelURI = string(f.Payload)
		case f.Num == 3 && f.Type == protowire.BytesType:
			s.MonitorURL = string(f.Payload)
		case f.Num == 4 && f.Type == protowire.BytesType:
			s.GroupName = string(f.Payload)
		case f.Num == 5 && f.Type == protowire.Fixed64Type:
			s.StartTimeSecs = math.Float64frombits(f.Fixed)
		}
		return nil
	})
	return s, err
}

func decodeHPExperiment(b []byte) (HPExperiment, error) {
	var e HPExperiment
	err := pbwire.Walk(b, func(f pbwire.Field) error {
		switch {
		case f.Num == 6 && f.Type == protowire.BytesType:
			e.Name = string(f.Payload)
		case f.Num == 1 && f.Type == protowire.BytesType:
			e.Description = string(f.Payload)
		case f.Num == 2 && f.Type == protowire.BytesType:
			e.User = string(f.Payload)
		case f.Num == 3 && f.Type == protowire.Fixed64Type:
			e.TimeCreatedSecs = math.Float64frombits(f.Fixed)
		case f.Num == 4 && f.Type == protowire.BytesType:
			return pbwire.Walk(f.Payload, func(f pbwire.Field) error {
				if f.Num == 1 && f.Type == protowire.BytesType {
					e.HParamNames = append(e.HParamNames, string(f.Payload))
				}
				return nil
			})
		case f.Num == 5 && f.Type == protowire.BytesType:
			return pbwire.Walk(f.Payload, func(f pbwire.Field) error {
				if f.Num != 1 || f.Type != protowire.BytesType {
					return nil
				}
				var group, tag string
				if err := pbwire.Walk(f.Payload, func(f pbwire.Field) error {
					if f.Type == protowire.BytesType {
						switch f.Num {
						case 1:
							group = string(f.Payload)
						case 2:
							tag = string(f.Payload)
						}
					}
					return nil
				}); err != nil {
					return err
				}
				if group != "" {
					tag = group + "/" + tag
				}
				e.MetricTags = append(e.MetricTags, tag)
				return nil
			})
		}
		return nil
	})
	return e, err
}

// structValue converts a serialized google.protobuf.Value to JSON text.
// Non-finite numbers become the strings "NaN", "Infinity", "-Infinity".
func structValue(b []byte) ([]byte, error) {
	out := []byte("null")
	err := pbwire.Walk(b, func(f pbwire.Field) error {
		switch f.Num {
		case 1:
			out = []byte("null")
		case 2:
			if f.Type != protowire.Fixed64Type {
				return fmt.Errorf("number_value: wire type %d", f.Type)
			}
			out = jsonNumber(math.Float64frombits(f.Fixed))
		case 3:
			s, _ := json.Marshal(string(f.Payload))
			out = s
		case 4:
			out = []byte(strconv.FormatBool(f.Varint != 0))
		case 5: // Struct: repeated fields map entry (1 key, 2 Value)
			m := map[string]json.RawMessage{}
			err := pbwire.Walk(f.Payload, func(f pbwire.Field) error {
				if f.Num != 1 || f.Type != protowire.BytesType {
					return nil
				}
				var k string
				v := json.RawMessage("null")
				err := pbwire.Walk(f.Payload, func(g pbwire.Field) error {
					if g.Type != protowire.BytesType {
						return nil
					}
					switch g.Num {
					case 1:
						k = string(g.Payload)
					case 2:
						x, err := structValue(g.Payload)
						if err != nil {
							return err
						}
						v = x
					}
					return nil
				})
				m[k] = v
				return err
			})
			if err != nil {
				return err
			}
			out, _ = json.Marshal(m)
		case 6: // ListValue: repeated Value values = 1
			var l []json.RawMessage
			err := pbwire.Walk(f.Payload, func(f pbwire.Field) error {
				if f.Num == 1 && f.Type == protowire.BytesType {
					x, err := structValue(f.Payload)
					if err != nil {
						return err
					}
					l = append(l, x)
				}
				return nil
			})
			if err != nil {
				return err
			}
			if l == nil {
				l = []json.RawMessage{}
			}
			out, _ = json.Marshal(l)
		}
		return nil
	})
	return out, err
}

// jsonNumber formats f as JSON, non-finite numbers as strings.
func jsonNumber(f float64) []byte {
	switch {
	case math.IsNaN(f):
		return []byte(`"NaN"`)
	case math.IsInf(f, 1):
		return []byte(`"Infinity"`)
	case math.IsInf(f, -1):
		return []byte(`"-Infinity"`)
	}
	return strconv.AppendFloat(nil, f, 'g', -1, 64)
}
