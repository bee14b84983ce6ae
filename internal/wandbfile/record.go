package wandbfile

import (
	"strconv"

	"github.com/runferry/runferry/internal/pbwire"
)

// Kind says which record type a Record holds. Its value is the field number
// of that type in W&B's `Record` message (so unknown future types keep their
// number); KindNone means the record carried no record type at all.
type Kind int32

// The record kinds, numbered as in wandb_internal.proto.
const (
	KindNone         Kind = 0
	KindHistory      Kind = 2
	KindSummary      Kind = 3
	KindOutput       Kind = 4
	KindConfig       Kind = 5
	KindFiles        Kind = 6
	KindStats        Kind = 7
	KindArtifact     Kind = 8
	KindTBRecord     Kind = 9
	KindAlert        Kind = 10
	KindTelemetry    Kind = 11
	KindMetric       Kind = 12
	KindOutputRaw    Kind = 13
	KindRun          Kind = 17
	KindExit         Kind = 18
	KindFinal        Kind = 20
	KindHeader       Kind = 21
	KindFooter       Kind = 22
	KindPreempting   Kind = 23
	KindLinkArtifact Kind = 24
	KindUseArtifact  Kind = 25
	KindEnvironment  Kind = 26
	KindOutputLogger Kind = 27
	KindRequest      Kind = 100
)

// kindNames maps every known kind to its snake_case name (the proto field
// name).
var kindNames = map[Kind]string{
	KindNone:         "none",
	KindHistory:      "history",
	KindSummary:      "summary",
	KindOutput:       "output",
	KindConfig:       "config",
	KindFiles:        "files",
	KindStats:        "stats",
	KindArtifact:     "artifact",
	KindTBRecord:     "tbrecord",
	KindAlert:        "alert",
	KindTelemetry:    "telemetry",
	KindMetric:       "metric",
	KindOutputRaw:    "output_raw",
	KindRun:          "run",
	KindExit:         "exit",
	KindFinal:        "final",
	KindHeader:       "header",
	KindFooter:       "footer",
	KindPreempting:   "preempting",
	KindLinkArtifact: "link_artifact",
	KindUseArtifact:  "use_artifact",
	KindEnvironment:  "environment",
	KindOutputLogger: "output_logger",
	KindRequest:      "request",
}

// String returns the proto field name of the kind ("history", "output_raw",
// ...) or "unknown_N" for a field number this package does not know.
func (k Kind) String() string {
	if name, ok := kindNames[k]; ok {
		return name
	}
	return "unknown_" + strconv.Itoa(int(k))
}

// Known reports whether the kind is one this package names.
func (k Kind) Known() bool {
	_, ok := kindNames[k]
	return ok
}

// Record is one decoded entry of a `.wandb` file. Kind says which of the
// pointer fields is set; at most one is, and none for kinds whose content is
// not decoded (link_artifact, request, unknown kinds) or that have no
// content (final, footer, preempting). Telemetry keeps only its version
// fields.
//
// Strings are kept byte for byte as written and may be invalid UTF-8: W&B's
// console capture (output_raw) can split a multi-byte character across two
// records, and joining the raw strings restores it, which sanitizing each
// record would prevent. Callers that need valid UTF-8 apply
// strings.ToValidUTF8 where they store the text.
type Record struct {
	// Num is the writer's sequence number (Record.num).
	Num int64 `json:"num,omitempty"`
	// Kind is the record type.
	Kind Kind `json:"-"`
	// Local is Record.control.local: the record was not meant to be synced.
	Local bool `json:"local,omitempty"`
	// UUID is Record.uuid, rarely set.
	UUID string `json:"uuid,omitempty"`

	History      *History      `json:"history,omitempty"`
	Summary      *Summary      `json:"summary,omitempty"`
	Config       *Config       `json:"config,omitempty"`
	Output       *Output       `json:"output,omitempty"` // KindOutput and KindOutputRaw
	Files        *Files        `json:"files,omitempty"`
	Stats        *Stats        `json:"stats,omitempty"`
	Artifact     *Artifact     `json:"artifact,omitempty"`
	TBRecord     *TBRecord     `json:"tbrecord,omitempty"`
	Alert        *Alert        `json:"alert,omitempty"`
	Telemetry    *Telemetry    `json:"telemetry,omitempty"`
	Metric       *Metric       `json:"metric,omitempty"`
	Run          *Run          `json:"run,omitempty"`
	Exit         *Exit         `json:"exit,omitempty"`
	Header       *Header       `json:"header,omitempty"`
	UseArtifact  *UseArtifact  `json:"use_artifact,omitempty"`
	Environment  *Environment  `json:"environment,omitempty"`
	OutputLogger *OutputLogger `json:"output_logger,omitempty"`
}

// Record field numbers that are not record types.
const (
	recordFieldNum     = 1
	recordFieldControl = 16
	recordFieldUUID    = 19
	recordFieldInfo    = 200
)

// Decode decodes one record payload as returned by Reader.Next. Unknown
// fields and unknown record types are skipped (an unknown type gives a Record
// whose Kind is its field number). A malformed message, or a known field with
// the wrong wire type, is an error; Decode never panics on any input. The
// Record does not retain payload.
func Decode(payload []byte) (Record, error) {
	var rec Record
	err := pbwire.Walk(payload, func(f pbwire.Field) error {
		switch f.Num {
		case recordFieldNum:
			return within("num", f.SetInt64(&rec.Num))
		case recordFieldControl:
			return within("control", decodeControl(f, &rec))
		case recordFieldUUID:
			return within("uuid", f.SetStr(&rec.UUID))
		case recordFieldInfo:
			return nil
		}
		kind := Kind(f.Num)
		if !kind.Known() {
			// A newer record type, or a newer field beside the oneof: name
			// it only when nothing known was found (yet).
			if !rec.Kind.Known() || rec.Kind == KindNone {
				rec.Kind = kind
			}
			return nil
		}
		if rec.Kind != kind && rec.Kind.Known() {
			rec.clearContent() // protobuf oneof: the last member wins
		}
		rec.Kind = kind
		return within(kind.String(), rec.decodeContent(kind, f))
	})
	if err != nil {
		return Record{}, err
	}
	return rec, nil
}

// decodeControl reads the fields of Record.control that matter to readers.
func decodeControl(f pbwire.Field, rec *Record) error {
	b, err := f.Message()
	if err != nil {
		return err
	}
	return pbwire.Walk(b, func(g pbwire.Field) error {
		if g.Num == 2 {
			return g.SetBool(&rec.Local)
		}
		return nil
	})
}

// clearContent drops a previously decoded record type.
func (rec *Record) clearContent() {
	*rec = Record{Num: rec.Num, Local: rec.Local, UUID: rec.UUID}
}

// decodeContent decodes the record-type field f of kind k into rec.
func (rec *Record) decodeContent(k Kind, f pbwire.Field) error {
	switch k {
	case KindFinal, KindFooter, KindPreempting, KindLinkArtifact, KindRequest:
		_, err := f.Message() // content is only bookkeeping; check the type
		return err
	}
	b, err := f.Message()
	if err != nil {
		return err
	}
	switch k {
	case KindHistory:
		rec.History, err = decodeHistory(b)
	case KindSummary:
		rec.Summary, err = decodeSummary(b)
	case KindConfig:
		rec.Config, err = decodeConfig(b)
	case KindOutput, KindOutputRaw:
		rec.Output, err = decodeOutput(b)
	case KindFiles:
		rec.Files, err = decodeFiles(b)
	case KindStats:
		rec.Stats, err = decodeStats(b)
	case KindArtifact:
		rec.Artifact, err = decodeArtifact(b)
	case KindTBRecord:
		rec.TBRecord, err = decodeTBRecord(b)
	case KindAlert:
		rec.Alert, err = decodeAlert(b)
	case KindTelemetry:
		rec.Telemetry, err = decodeTelemetry(b)
	case KindMetric:
		rec.Metric, err = decodeMetric(b)
	case KindRun:
		rec.Run, err = decodeRun(b)
	case KindExit:
		rec.Exit, err = decodeExit(b)
	case KindHeader:
		rec.Header, err = decodeHeader(b)
	case KindUseArtifact:
		rec.UseArtifact, err = decodeUseArtifact(b)
	case KindEnvironment:
		rec.Environment, err = decodeEnvironment(b)
	case KindOutputLogger:
		rec.OutputLogger, err = decodeOutputLogger(b)
	}
	return err
}

// Content returns the decoded content of the record (the non-nil pointer
// field matching Kind), or nil when the kind has none.
func (rec *Record) Content() any {
	switch {
	case rec.History != nil:
		return rec.History
	case rec.Summary != nil:
		return rec.Summary
	case rec.Config != nil:
		return rec.Config
	case rec.Output != nil:
		return rec.Output
	case rec.Files != nil:
		return rec.Files
	case rec.Stats != nil:
		return rec.Stats
	case rec.Artifact != nil:
		return rec.Artifact
	case rec.TBRecord != nil:
		return rec.TBRecord
	case rec.Alert != nil:
		return rec.Alert
	case rec.Telemetry != nil:
		return rec.Telemetry
	case rec.Metric != nil:
		return rec.Metric
	case rec.Run != nil:
		return rec.Run
	case rec.Exit != nil:
		return rec.Exit
	case rec.Header != nil:
		return rec.Header
	case rec.UseArtifact != nil:
		return rec.UseArtifact
	case rec.Environment != nil:
		return rec.Environment
	case rec.OutputLogger != nil:
		return rec.OutputLogger
	}
	return nil
}
