package wandbfile

import (
	"fmt"
	"math"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// AppendRecord appends rec to b as a serialized W&B Record message, using
// the field numbers Decode reads, and returns the extended slice. It is the
// inverse of Decode for the kinds it supports: history, summary, config,
// stats, run, exit, header, telemetry, output, output_raw, and the
// content-free final, footer and preempting. For those,
// Decode(AppendRecord(nil, rec)) gives back rec, with times in UTC. Other
// kinds are an error.
//
// Encoding follows proto3: zero scalars and empty strings are left out, item
// keys are written as NestedKey when it is set and as Key otherwise. The
// content pointer matching rec.Kind must be set, except for the
// content-free kinds.
func AppendRecord(b []byte, rec *Record) ([]byte, error) {
	b = appendVarintField(b, recordFieldNum, uint64(rec.Num))
	if rec.Local {
		b = appendMessage(b, recordFieldControl, appendVarintField(nil, 2, 1))
	}
	b = appendStringField(b, recordFieldUUID, rec.UUID)
	content, err := appendContent(nil, rec)
	if err != nil {
		return nil, err
	}
	return appendMessage(b, protowire.Number(rec.Kind), content), nil
}

// appendContent encodes the content message of rec's kind.
func appendContent(b []byte, rec *Record) ([]byte, error) {
	missing := func() ([]byte, error) {
		return nil, fmt.Errorf("wandbfile: AppendRecord: %s record without content", rec.Kind)
	}
	switch rec.Kind {
	case KindFinal, KindFooter, KindPreempting:
		return b, nil
	case KindHistory:
		if rec.History == nil {
			return missing()
		}
		return appendHistory(b, rec.History), nil
	case KindSummary:
		if rec.Summary == nil {
			return missing()
		}
		return appendUpdateRemove(b, rec.Summary.Update, rec.Summary.Remove), nil
	case KindConfig:
		if rec.Config == nil {
			return missing()
		}
		return appendUpdateRemove(b, rec.Config.Update, rec.Config.Remove), nil
	case KindStats:
		if rec.Stats == nil {
			return missing()
		}
		return appendStats(b, rec.Stats), nil
	case KindRun:
		if rec.Run == nil {
			return missing()
		}
		return appendRun(b, rec.Run), nil
	case KindExit:
		if rec.Exit == nil {
			return missing()
		}
		return appendExit(b, rec.Exit), nil
	case KindHeader:
		if rec.Header == nil {
			return missing()
		}
		return appendHeader(b, rec.Header), nil
	case KindTelemetry:
		if rec.Telemetry == nil {
			return missing()
		}
		return appendTelemetry(b, rec.Telemetry), nil
	case KindOutput, KindOutputRaw:
		if rec.Output == nil {
			return missing()
		}
		return appendOutput(b, rec.Output), nil
	}
	return nil, fmt.Errorf("wandbfile: AppendRecord cannot encode %s records", rec.Kind)
}

// HistoryItem returns the item wandb-core writes for one leaf of a logged
// row: the key path as NestedKey (even for a top-level key) and the value as
// value_json.
func HistoryItem(valueJSON string, path ...string) Item {
	return Item{NestedKey: path, ValueJSON: valueJSON}
}

// appendItemMessage encodes one HistoryItem/SummaryItem/ConfigItem/StatsItem
// as the embedded message field num.
func appendItemMessage(b []byte, num protowire.Number, it *Item) []byte {
	size := 0
	if len(it.NestedKey) > 0 {
		for _, k := range it.NestedKey {
			size += protowire.SizeTag(itemFieldNestedKey) + protowire.SizeBytes(len(k))
		}
	} else if it.Key != "" {
		size += protowire.SizeTag(itemFieldKey) + protowire.SizeBytes(len(it.Key))
	}
	if it.ValueJSON != "" {
		size += protowire.SizeTag(itemFieldValueJSON) + protowire.SizeBytes(len(it.ValueJSON))
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(size))
	if len(it.NestedKey) > 0 {
		for _, k := range it.NestedKey {
			b = protowire.AppendTag(b, itemFieldNestedKey, protowire.BytesType)
			b = protowire.AppendString(b, k)
		}
	} else {
		b = appendStringField(b, itemFieldKey, it.Key)
	}
	return appendStringField(b, itemFieldValueJSON, it.ValueJSON)
}

// appendItems encodes items as the repeated field num.
func appendItems(b []byte, num protowire.Number, items []Item) []byte {
	for i := range items {
		b = appendItemMessage(b, num, &items[i])
	}
	return b
}

// appendHistory encodes a HistoryRecord (1 items, 2 step {1 num}).
func appendHistory(b []byte, h *History) []byte {
	b = appendItems(b, 1, h.Items)
	if h.Step != nil {
		b = appendMessage(b, 2, appendVarintField(nil, 1, uint64(*h.Step)))
	}
	return b
}

// appendUpdateRemove encodes a SummaryRecord or ConfigRecord.
func appendUpdateRemove(b []byte, update, remove []Item) []byte {
	b = appendItems(b, 1, update)
	return appendItems(b, 2, remove)
}

// appendStats encodes a StatsRecord (1 type, 2 timestamp, 3 items).
func appendStats(b []byte, s *Stats) []byte {
	b = appendVarintField(b, 1, uint64(int64(s.Type)))
	b = appendTimestamp(b, 2, s.Timestamp)
	return appendItems(b, 3, s.Items)
}

// appendRun encodes a RunRecord with the fields decodeRun reads.
func appendRun(b []byte, r *Run) []byte {
	b = appendStringField(b, 1, r.RunID)
	b = appendStringField(b, 2, r.Entity)
	b = appendStringField(b, 3, r.Project)
	if r.Config != nil {
		b = appendMessage(b, 4, appendUpdateRemove(nil, r.Config.Update, r.Config.Remove))
	}
	if r.Summary != nil {
		b = appendMessage(b, 5, appendUpdateRemove(nil, r.Summary.Update, r.Summary.Remove))
	}
	b = appendStringField(b, 6, r.Group)
	b = appendStringField(b, 7, r.JobType)
	b = appendStringField(b, 8, r.DisplayName)
	b = appendStringField(b, 9, r.Notes)
	for _, t := range r.Tags {
		b = protowire.AppendTag(b, 10, protowire.BytesType)
		b = protowire.AppendString(b, t)
	}
	if len(r.Settings) > 0 {
		b = appendMessage(b, 11, appendItems(nil, 1, r.Settings))
	}
	b = appendStringField(b, 12, r.SweepID)
	b = appendStringField(b, 13, r.Host)
	b = appendVarintField(b, 14, uint64(r.StartStep))
	b = appendStringField(b, 16, r.StorageID)
	b = appendTimestamp(b, 17, r.StartTime)
	b = appendBoolField(b, 18, r.Resumed)
	b = appendVarintField(b, 20, uint64(int64(r.Runtime)))
	if r.GitRemote != "" || r.GitCommit != "" {
		git := appendStringField(nil, 1, r.GitRemote)
		b = appendMessage(b, 21, appendStringField(git, 2, r.GitCommit))
	}
	b = appendBoolField(b, 22, r.Forked)
	if p := r.BranchPoint; p != nil {
		bp := appendStringField(nil, 1, p.Run)
		if p.Value != 0 || math.Signbit(p.Value) {
			bp = protowire.AppendTag(bp, 2, protowire.Fixed64Type)
			bp = protowire.AppendFixed64(bp, math.Float64bits(p.Value))
		}
		b = appendMessage(b, 23, appendStringField(bp, 3, p.Metric))
	}
	return b
}

// appendExit encodes a RunExitRecord (1 exit_code, 2 runtime,
// 3 not_complete).
func appendExit(b []byte, e *Exit) []byte {
	b = appendVarintField(b, 1, uint64(int64(e.ExitCode)))
	b = appendVarintField(b, 2, uint64(int64(e.Runtime)))
	return appendBoolField(b, 3, e.NotComplete)
}

// appendHeader encodes a HeaderRecord (1 version_info {1 producer,
// 2 min_consumer}).
func appendHeader(b []byte, h *Header) []byte {
	if h.Producer == "" && h.MinConsumer == "" {
		return b
	}
	info := appendStringField(nil, 1, h.Producer)
	return appendMessage(b, 1, appendStringField(info, 2, h.MinConsumer))
}

// appendTelemetry encodes the version fields of a TelemetryRecord.
func appendTelemetry(b []byte, t *Telemetry) []byte {
	b = appendStringField(b, 4, t.PythonVersion)
	b = appendStringField(b, 5, t.CLIVersion)
	b = appendStringField(b, 12, t.CoreVersion)
	return appendStringField(b, 13, t.Platform)
}

// appendOutput encodes an OutputRecord or OutputRawRecord (1 stream,
// 2 timestamp, 3 line).
func appendOutput(b []byte, o *Output) []byte {
	b = appendVarintField(b, 1, uint64(int64(o.Stream)))
	b = appendTimestamp(b, 2, o.Timestamp)
	return appendStringField(b, 3, o.Line)
}

// appendTimestamp encodes a google.protobuf.Timestamp; the zero time is left
// out.
func appendTimestamp(b []byte, num protowire.Number, t time.Time) []byte {
	if t.IsZero() {
		return b
	}
	ts := appendVarintField(nil, 1, uint64(t.Unix()))
	ts = appendVarintField(ts, 2, uint64(int64(t.Nanosecond())))
	return appendMessage(b, num, ts)
}

// appendMessage appends an embedded message field (always, even if empty:
// an empty message still says which oneof member is set).
func appendMessage(b []byte, num protowire.Number, msg []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, msg)
}

// appendStringField appends a string field unless s is empty.
func appendStringField(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

// appendVarintField appends a varint field unless v is zero.
func appendVarintField(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

// appendBoolField appends a bool field when v is true.
func appendBoolField(b []byte, num protowire.Number, v bool) []byte {
	if !v {
		return b
	}
	return appendVarintField(b, num, 1)
}
