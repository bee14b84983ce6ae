package parquetdir

import (
	"cmp"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"hash"
	"reflect"
	"slices"
	"time"

	"github.com/runferry/runferry/internal/archive"
	"github.com/runferry/runferry/schema"
)

// appendCheck is what an appending writer was given beyond its metric
// points, kept so that Commit can find the run equal to the copy the
// archive holds and then write nothing (no snapshot of runs that did not
// change: a W&B folder moved to another path, read with a new ledger,
// gives its runs new fingerprints although nothing in them changed).
// Console lines and rich values are kept as running SHA-256 digests of
// their rows, not in memory.
type appendCheck struct {
	prev     archive.RunEntry
	run      schema.Run
	points   int64
	logs     hash.Hash
	logSeq   int64
	rich     hash.Hash
	bodies   int64    // files given with a body
	problems []string // files given without one: path and problem
	mark     string
	// fingerprint is the one the engine gave (SetFingerprint): "" when
	// the source vouches for nothing, as for a run with unreadable files.
	fingerprint string
}

func newAppendCheck(prev archive.RunEntry, r schema.Run) *appendCheck {
	return &appendCheck{prev: prev, run: r, logs: sha256.New(), rich: sha256.New()}
}

func (c *appendCheck) addLogs(origin string, lines []schema.LogLine) {
	for _, l := range lines {
		hashRow(c.logs, archive.LogToRow(origin, c.logSeq, l))
		c.logSeq++
	}
}

func (c *appendCheck) addRich(origin string, values []schema.RichValue) {
	for _, v := range values {
		hashRow(c.rich, archive.RichValueToRow(origin, v))
	}
}

func (c *appendCheck) addArtifact(a schema.Artifact, hasBody bool) {
	if hasBody {
		c.bodies++
	} else {
		c.problems = append(c.problems, a.Path+"\x00"+a.Problem)
	}
}

// hashRow adds a row's JSON, one line, to h.
func hashRow(h hash.Hash, row any) {
	b, _ := json.Marshal(row) // plain structs of strings and numbers
	h.Write(append(b, '\n'))
}

// unchanged reports whether the append holds nothing the archive's copy
// (c.prev) does not: no new point, the same mark, every file given again
// kept with the content held (keptFiles of FileDelta) and none dropped,
// the same files without a body and with the same problems, and the same
// run fields, params, tags, dataset inputs, console lines and rich values,
// row for row (the fingerprint aside: the one a moved source gives).
// A run given without a fingerprint (the source vouches for nothing: a
// file or folder of it could not be read, so what the copy lacks may
// arrive now) and a RUNNING run (written again, as every sync of a live
// run is) are never unchanged.
// It reads the copy's tables other than metrics through st.
func (c *appendCheck) unchanged(st archive.Store, keptFiles, deletedFiles int64) (bool, error) {
	if c.fingerprint == "" || c.run.Status == schema.StatusRunning {
		return false, nil
	}
	if c.points != 0 || c.mark == "" || c.mark != c.prev.Mark || deletedFiles != 0 || keptFiles != c.bodies {
		return false, nil
	}
	r := archive.NewEntryReader(st)
	held, err := r.ReadRun(c.prev)
	if err != nil {
		return false, err
	}
	if !sameRun(c.run, held) {
		return false, nil
	}
	arts, err := r.Artifacts(c.prev)
	if err != nil {
		return false, err
	}
	var problems []string
	var bodies int64
	for _, a := range arts {
		if a.SHA256 != nil {
			bodies++
		} else {
			problems = append(problems, a.Path+"\x00"+a.Problem)
		}
	}
	slices.Sort(problems)
	given := slices.Sorted(slices.Values(c.problems))
	if bodies != c.bodies || !slices.Equal(problems, given) {
		return false, nil
	}
	logs, seq := sha256.New(), int64(0)
	if err := r.Logs(c.prev, 4096, func(lines []schema.LogLine) error {
		for _, l := range lines {
			hashRow(logs, archive.LogToRow(c.prev.Origin, seq, l))
			seq++
		}
		return nil
	}); err != nil {
		return false, err
	}
	if seq != c.logSeq || string(logs.Sum(nil)) != string(c.logs.Sum(nil)) {
		return false, nil
	}
	rich := sha256.New()
	if err := r.RichValues(c.prev, 1024, func(values []schema.RichValue) error {
		for _, v := range values {
			hashRow(rich, archive.RichValueToRow(c.prev.Origin, v))
		}
		return nil
	}); err != nil {
		return false, err
	}
	return string(rich.Sum(nil)) == string(c.rich.Sum(nil)), nil
}

// sameRun reports whether the archive would hold given as it holds held:
// the same runs row (fingerprint and snapshot aside), params, tags and
// dataset inputs.
func sameRun(given, held schema.Run) bool {
	// The archive keeps times to the millisecond.
	given.Start, given.End = given.Start.Truncate(time.Millisecond), given.End.Truncate(time.Millisecond)
	g, _ := json.Marshal(archive.RunToRow(given, "", 0))
	h, _ := json.Marshal(archive.RunToRow(held, "", 0))
	if string(g) != string(h) {
		return false
	}
	kv := func(k, v string) string { return k + "\x00" + v }
	var gp, hp []string
	for _, p := range given.Params {
		gp = append(gp, kv(p.Key, p.Value))
	}
	for _, p := range held.Params {
		hp = append(hp, kv(p.Key, p.Value))
	}
	var gt, ht []string
	for _, t := range given.Tags {
		gt = append(gt, kv(t.Key, t.Value))
	}
	for _, t := range held.Tags {
		ht = append(ht, kv(t.Key, t.Value))
	}
	for _, s := range [][]string{gp, hp, gt, ht} {
		slices.Sort(s)
	}
	if !slices.Equal(gp, hp) || !slices.Equal(gt, ht) {
		return false
	}
	rows := func(in []schema.DatasetInput) []archive.InputRow {
		out := make([]archive.InputRow, len(in))
		for i, x := range in {
			out[i] = archive.InputToRow(given.Origin.String(), x)
		}
		slices.SortFunc(out, func(a, b archive.InputRow) int { return cmp.Compare(fmt.Sprint(a), fmt.Sprint(b)) })
		return out
	}
	return reflect.DeepEqual(rows(given.Inputs), rows(held.Inputs))
}
