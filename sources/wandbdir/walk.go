package wandbdir

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/runferry/runferry/internal/fault"
	"github.com/runferry/runferry/internal/wandbfile"
)

// histRow is one history row as read from a segment: a `.wandb` history
// record (row; scanned in place, it views the reader's buffer and is valid
// only during the handler call) or a line of a pre-0.10
// wandb-history.jsonl (obj).
type histRow struct {
	row *wandbfile.Row
	obj map[string]any
}

// convert converts the row with conv, which then holds its points (see
// wandbfile.RowConverter.Convert).
func (h histRow) convert(conv *wandbfile.RowConverter, points bool) wandbfile.RowValues {
	if h.obj != nil {
		return conv.ConvertParsed(objectItems(h.obj), nil, points)
	}
	return conv.Convert(h.row, points)
}

// header parses only the row's step and timestamp, for passes that need no
// values.
func (h histRow) header(conv *wandbfile.RowConverter) wandbfile.RowValues {
	if h.obj != nil {
		r, _ := wandbfile.ConvertValues([]wandbfile.Value{
			{Path: []string{wandbfile.KeyStep}, Value: h.obj[wandbfile.KeyStep]},
			{Path: []string{wandbfile.KeyTimestamp}, Value: h.obj[wandbfile.KeyTimestamp]},
		}, nil)
		return r
	}
	return conv.Header(h.row)
}

// handler receives what walk reads. Nil functions are skipped, and the
// records they would get are not decoded: a walk whose record function is
// nil, for one, notes no damage for undecodable records of other types.
// Returning an error stops the walk with it.
type handler struct {
	// record gets every decoded `.wandb` record except history and stats.
	record func(seg *segment, rec *wandbfile.Record) error
	// kinds, when not nil, narrows record to the records whose kind
	// (wandbfile.PeekRecord) it accepts: the others are not decoded. A
	// record PeekRecord cannot read is decoded and handed to record
	// whatever its kind.
	kinds func(wandbfile.Kind) bool
	// history gets each history row.
	history func(seg *segment, h histRow) error
	// stats gets each system-metrics sample.
	stats func(seg *segment, t time.Time, items []wandbfile.Value) error
	// damage gets the damage notes of each segment that has any, before
	// its segmentEnd.
	damage func(seg *segment, notes []string)
	// corrupt is called, before segmentEnd, for a segment whose `.wandb`
	// log is damaged other than by a truncated tail (checksum errors,
	// malformed chunks, undecodable records): a record, its exit record
	// too, may be lost anywhere in it. A truncated tail alone is what a
	// live writer or a crash leaves, and is not corruption.
	corrupt func(seg *segment)
	// segmentEnd is called after each segment.
	segmentEnd func(seg *segment) error
}

// fastPath enables the fast path of walkWandbFile and of the passes'
// row converters (see wandbfile.PeekRecord); tests turn it off to compare
// with the plain decoding and conversion.
var fastPath = true

// newConverter returns the row converter of one pass.
func newConverter() *wandbfile.RowConverter {
	return &wandbfile.RowConverter{Reference: !fastPath}
}

// ctxCheckEvery is how many records walk reads between context checks.
const ctxCheckEvery = 256

// walk reads the run's segments in start order and feeds h. What cannot be
// read as records (damage found by the `.wandb` reader, undecodable
// records, unparsable JSON lines) is returned as notes; the walk carries on
// past it. Only I/O errors, ctx and h's errors stop it.
func walk(ctx context.Context, ri *runInfo, h handler) (damage []string, err error) {
	for _, seg := range ri.segments {
		if err := ctx.Err(); err != nil {
			return damage, err
		}
		var notes []string
		switch {
		case seg.wandbFile != "":
			notes, err = walkWandbFile(ctx, seg, h)
		case seg.legacy:
			notes, err = walkLegacy(seg, h)
		}
		damage = append(damage, notes...)
		if err != nil {
			return damage, err
		}
		if h.damage != nil && len(notes) > 0 {
			h.damage(seg, notes)
		}
		if h.segmentEnd != nil {
			if err := h.segmentEnd(seg); err != nil {
				return damage, err
			}
		}
	}
	return damage, nil
}

// walkWandbFile streams one `.wandb` file.
func walkWandbFile(ctx context.Context, seg *segment, h handler) ([]string, error) {
	name := seg.name(seg.wandbFile)
	f, err := os.Open(seg.wandbFile)
	if err != nil {
		return nil, fault.Permanent(fmt.Errorf("wandb: %w", err))
	}
	defer f.Close()
	// The name the log's run records give the run is learnt on the way
	// (run records are few: each is decoded whatever h wants), and kept
	// on the segment when the log was read to its end unchanged (see
	// segment.whole): the next job's light header takes it from the log
	// cache instead of reading the log again.
	var named string
	before, beforeOK := fileIdentity(f)
	rd, err := wandbfile.NewReader(f, name)
	if err != nil {
		if h.corrupt != nil {
			h.corrupt(seg)
		}
		return []string{err.Error()}, nil // not a .wandb file: the run keeps its other files
	}
	var notes []string
	var corrupt bool
	var row wandbfile.Row
	sc := wandbfile.NewScanner(rd)
	defer sc.Close()
	for n := 1; ; n++ {
		payload, offset, err := sc.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return notes, fault.Permanent(fmt.Errorf("wandb: reading %s: %w", name, err))
		}
		if n%ctxCheckEvery == 0 && ctx.Err() != nil {
			return notes, ctx.Err()
		}
		if kind, body, clean := wandbfile.PeekRecord(payload); clean && fastPath {
			switch kind {
			case wandbfile.KindHistory:
				if h.history == nil {
					continue
				}
				if row.Scan(body) {
					if err := h.history(seg, histRow{row: &row}); err != nil {
						return notes, err
					}
					continue
				}
			case wandbfile.KindStats:
				if h.stats == nil {
					continue
				}
			default:
				if h.record == nil || (h.kinds != nil && !h.kinds(kind)) {
					if kind == wandbfile.KindRun {
						if rec, err := wandbfile.Decode(payload); err == nil && rec.Run != nil {
							named = cmpOr(rec.Run.DisplayName, named)
						}
					}
					continue
				}
			}
		}
		rec, err := wandbfile.Decode(payload)
		if err != nil {
			notes = append(notes, fmt.Sprintf("%s: offset %d: undecodable record: %v", name, offset, err))
			corrupt = true
			continue
		}
		if rec.Run != nil {
			named = cmpOr(rec.Run.DisplayName, named)
		}
		if err := dispatch(seg, &rec, h, &row); err != nil {
			return notes, err
		}
	}
	if after, ok := fileIdentity(f); beforeOK && ok && after == before {
		seg.whole.Store(&logName{id: before, name: named})
	}
	// The scanner is done: its damage list is final.
	for _, d := range sc.Damage() {
		notes = append(notes, d.Error())
		corrupt = corrupt || !d.Truncated
	}
	if corrupt && h.corrupt != nil {
		h.corrupt(seg)
	}
	return notes, nil
}

// fileIdentity is the identity of the open file f (see fileID); ok is
// false when the system does not tell it whole.
func fileIdentity(f *os.File) (fileID, bool) {
	fi, err := f.Stat()
	if err != nil {
		return fileID{}, false
	}
	return identityOf(fi)
}

// dispatch hands one decoded record to h; row is the buffer for a history
// row.
func dispatch(seg *segment, rec *wandbfile.Record, h handler, row *wandbfile.Row) error {
	switch {
	case rec.History != nil:
		if h.history != nil {
			row.SetHistory(rec.History)
			return h.history(seg, histRow{row: row})
		}
	case rec.Stats != nil:
		if h.stats != nil {
			return h.stats(seg, rec.Stats.Timestamp, wandbfile.ParseItems(rec.Stats.Items))
		}
	default:
		if h.record != nil {
			return h.record(seg, rec)
		}
	}
	return nil
}

// walkLegacy reads the history and system metrics of a pre-0.10 run folder
// from wandb-history.jsonl and wandb-events.jsonl.
func walkLegacy(seg *segment, h handler) ([]string, error) {
	var notes []string
	bad := func(path string, line int, err error) {
		notes = append(notes, fmt.Sprintf("%s: line %d: %v", seg.name(path), line, err))
	}
	if h.history != nil {
		path := filepath.Join(seg.dir, "wandb-history.jsonl")
		err := readJSONLines(path, func(line int, obj map[string]any, err error) error {
			if err != nil {
				bad(path, line, err)
				return nil
			}
			return h.history(seg, histRow{obj: obj})
		})
		if err != nil && !unopenable(err) {
			return notes, legacyErr(seg, path, err)
		}
	}
	if h.stats != nil {
		path := filepath.Join(seg.dir, "wandb-events.jsonl")
		err := readJSONLines(path, func(line int, obj map[string]any, err error) error {
			if err != nil {
				bad(path, line, err)
				return nil
			}
			t, items := eventsToStats(obj)
			return h.stats(seg, t, items)
		})
		if err != nil && !unopenable(err) {
			return notes, legacyErr(seg, path, err)
		}
	}
	return notes, nil
}

// legacyErr classifies an error reading a JSON-lines file: the handler's
// own errors pass through, I/O errors are permanent for the run.
func legacyErr(seg *segment, path string, err error) error {
	if errors.Is(err, errStop) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fault.Permanent(fmt.Errorf("wandb: reading %s: %w", seg.name(path), err))
}

// unopenable reports whether err is a JSON-lines file that could not be
// opened for lack of permission: the run is read without it, and the file
// listing names it in the run's Damage.
func unopenable(err error) bool {
	var pe *fs.PathError
	return errors.As(err, &pe) && pe.Op == "open" && errors.Is(err, fs.ErrPermission)
}

// errStop is returned by handlers when the consumer stopped iterating.
var errStop = errors.New("stop")
