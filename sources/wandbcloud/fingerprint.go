package wandbcloud

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/runferry/runferry/internal/fault"
	"github.com/runferry/runferry/internal/wandbapi"
	"github.com/runferry/runferry/internal/wandbfile"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sources"
)

// Change detection for sync (sources.Fingerprinter), from the run listing
// alone: a run's fingerprint is a digest of what the runs query already
// answered, so a sync in which nothing changed reads no history, no
// console line, no file and no artifact.
//
// The digest covers the run as converted (name, state, times with
// heartbeatAt, config, summary, tags, notes, group, job type, the
// environment), and the counters the listing gives: historyLineCount,
// lastStep and the history keys with their last values (historyKeys),
// eventsLineCount (system metrics), logLineCount (console lines) and
// fileCount (run files). A run that logs a point, a console line, a
// system-metrics row or a file, or whose metadata is edited, changes at
// least one of them; a running run whose heartbeat and counters stand
// still is unchanged.
//
// What the listing cannot show: a run file replaced in place by one of the
// same name (W&B keeps one version of a run file; fileCount stays), and an
// artifact logged or used through the API by another process after the
// run ended (runs do not list their artifact counts). sync --force, or
// --lookback for runs whose heartbeat is recent, compares those runs with
// the destination in full.

var _ sources.Fingerprinter = (*Source)(nil)

// fingerprintVersion prefixes every fingerprint; a change of what the
// digest covers changes it, so that runs are compared anew.
const fingerprintVersion = "wandb-api:1:"

// Fingerprint is the run's listing digest (see above), kept when the run
// was listed; a run not listed by this source is asked for (one request).
func (s *Source) Fingerprint(ctx context.Context, run schema.Run) (string, error) {
	s.mu.Lock()
	fp, ok := s.fingerprints[run.Origin.ID]
	s.mu.Unlock()
	if ok {
		return fp, nil
	}
	p, err := s.split(run.Origin.ID, 2)
	if err != nil {
		return "", err
	}
	r, err := s.api.Run(ctx, s.cfg.Entity, p[0], p[1])
	if err != nil {
		return "", err
	}
	return fingerprint(s.convert(run.Experiment, p[0], r), r)
}

// fingerprint digests the listed run r, converted as conv.
func fingerprint(conv schema.Run, r wandbapi.Run) (string, error) {
	var keys string
	if len(r.HistoryKeys) > 0 {
		// Decoded and encoded again: the same keys give the same bytes
		// whatever order the server wrote them in.
		v, err := decodeLenient(string(r.HistoryKeys))
		if err != nil {
			return "", fault.Permanent(fmt.Errorf("wandb: run %s: historyKeys: %v", conv.Origin.ID, err))
		}
		keys = wandbfile.ValueToJSON(v)
	}
	last, hasLast, _ := r.LastStep()
	doc := struct {
		Run                                      schema.Run
		State                                    string
		HeartbeatAt                              *string
		HistoryLineCount                         int64
		LastStep                                 *int64
		EventsLineCount, LogLineCount, FileCount *int64
		HistoryKeys                              string
	}{Run: conv, State: r.State, HeartbeatAt: r.HeartbeatAt, HistoryLineCount: r.HistoryLineCount,
		EventsLineCount: r.EventsLineCount, LogLineCount: r.LogLineCount, FileCount: r.FileCount, HistoryKeys: keys}
	if hasLast {
		doc.LastStep = &last
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return "", fault.Permanent(fmt.Errorf("wandb: run %s: fingerprint: %v", conv.Origin.ID, err))
	}
	sum := sha256.Sum256(b)
	return fingerprintVersion + hex.EncodeToString(sum[:16]), nil
}
