package archive_test

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/internal/archive"
	"github.com/runferry/runferry/internal/testenv"
	sinkparquet "github.com/runferry/runferry/sinks/parquetdir"
	"github.com/runferry/runferry/sources/dataset"
	memsrc "github.com/runferry/runferry/sources/memory"
)

// TestS3ObjectLockOption: object-lock=MODE:PERIOD is parsed when the
// archive is opened; a wrong one is a one-line error naming the option.
func TestS3ObjectLockOption(t *testing.T) {
	s := testenv.SharedS3(t)
	loc := s.Location(s.CreateBucket(t, "lockopt"), "a")
	for _, v := range []string{"governance:30d", "COMPLIANCE:1y", "governance:12h"} {
		st, err := archive.OpenStore(loc + "&object-lock=" + v)
		if err != nil {
			t.Errorf("object-lock=%s: %v", v, err)
			continue
		}
		st.Close()
	}
	for v, want := range map[string]string{
		"legal-hold:30d": `unknown mode "legal-hold": want governance or compliance`,
		"governance":     "want MODE:PERIOD",
		"governance:0d":  `bad retention period "0d"`,
		"compliance:ten": `bad retention period "ten"`,
	} {
		_, err := archive.OpenStore(loc + "&object-lock=" + v)
		if err == nil || !strings.Contains(err.Error(), "option object-lock=") || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("object-lock=%s: %v, want one line saying %q", v, err, want)
		}
	}
}

// TestS3ObjectLockRetention: in a bucket with Object Lock enabled, an
// archive written with object-lock=governance:PERIOD holds its data
// files, artifact bodies and snapshot manifests under governance retention
// until PERIOD after their write (manifest.json, the journal and the lock
// objects, which the protocol replaces, are not retained). Prune then
// removes what is no longer retained and keeps, and lists with the date
// its retention ends, what still is; the archive checks and reads back.
func TestS3ObjectLockRetention(t *testing.T) {
	s := testenv.SharedS3(t)
	bucket := lockedBucket(t, s)
	base := s.Location(bucket, "a")
	v1 := dataset.Canonical()
	write(t, base+"&object-lock=governance:2s", v1)

	// What is retained, and until when.
	head := func(key string) *s3.HeadObjectOutput {
		t.Helper()
		h, err := s.Client().HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("a/" + key)})
		if err != nil {
			t.Fatalf("head %s: %v", key, err)
		}
		return h
	}
	var latest time.Time
	var keys []string
	for _, top := range append(archive.Tables, "blobs", "snapshots") {
		keys = append(keys, objectsUnder(t, base, top)...)
	}
	if len(keys) < 10 {
		t.Fatalf("archive holds %d objects: %v", len(keys), keys)
	}
	for _, k := range keys {
		h := head(k)
		if h.ObjectLockMode != types.ObjectLockModeGovernance || h.ObjectLockRetainUntilDate == nil {
			t.Errorf("%s: lock mode %q, until %v; want GOVERNANCE with a date", k, h.ObjectLockMode, h.ObjectLockRetainUntilDate)
			continue
		}
		if d := time.Until(*h.ObjectLockRetainUntilDate); d > 2*time.Second {
			t.Errorf("%s: retained %v from now, want at most 2s", k, d)
		}
		latest = later(latest, *h.ObjectLockRetainUntilDate)
	}
	if h := head(archive.ManifestFile); h.ObjectLockRetainUntilDate != nil {
		t.Errorf("manifest.json retained until %v; it is replaced at every publish", h.ObjectLockRetainUntilDate)
	}

	// Once v1's retention ended, v2 changes one run (its superseded files
	// move to history/ under the new, long retention) and drops a file.
	time.Sleep(time.Until(latest) + time.Second)
	v2 := v1.Clone()
	v2.Runs[0].Run.Notes = "changed"
	v2.Runs[0].Files = v2.Runs[0].Files[:0]
	write(t, base+"&object-lock=governance:1h", v2)
	history := objectsUnder(t, base, "history")
	if len(history) == 0 {
		t.Fatal("no superseded file in history/")
	}
	rep, err := archive.Prune(base, 1)
	if err != nil {
		t.Fatalf("prune: %v", err)
	}
	var retained []string
	for _, r := range rep.Retained {
		retained = append(retained, strings.TrimPrefix(r.Name, "s3://"+bucket+"/a/"))
		if d := time.Until(r.Until); d < 50*time.Minute || d > time.Hour {
			t.Errorf("%s retained for %v, want about 1h", r.Name, d)
		}
	}
	slices.Sort(retained)
	slices.Sort(history)
	if !slices.Equal(retained, history) || rep.Files != 0 {
		t.Errorf("prune kept as retained %q and removed %d data files; want the history files %q kept, none removed", retained, rep.Files, history)
	}
	if rep.Snapshots != 1 || rep.Blobs == 0 || !slices.Equal(rep.Kept, []int64{2}) {
		t.Errorf("prune: %+v; want snapshot 1 and v1's bodies (no longer retained) removed", rep)
	}
	if got := objectsUnder(t, base, "history"); !slices.Equal(got, history) {
		t.Errorf("history after prune: %q, want %q", got, history)
	}
	if _, err := archive.Check(base); err != nil {
		t.Fatalf("check: %v", err)
	}
	expectEqual(t, base, v2)
}

// TestS3ObjectLockSnapshotKept: prune keeps a snapshot manifest under
// retention readable, with every file it references.
func TestS3ObjectLockSnapshotKept(t *testing.T) {
	s := testenv.SharedS3(t)
	bucket := lockedBucket(t, s)
	base := s.Location(bucket, "a")
	v1 := dataset.Canonical()
	write(t, base, v1) // no retention: its files move to history/ freely
	v2 := v1.Clone()
	v2.Runs[0].Run.Notes = "changed"
	write(t, base, v2)
	// Snapshot 1's manifest put under retention (as a bucket's default
	// retention would have).
	if _, err := s.Client().PutObjectRetention(context.Background(), &s3.PutObjectRetentionInput{Bucket: aws.String(bucket), Key: aws.String("a/snapshots/000001.json"),
		Retention: &types.ObjectLockRetention{Mode: types.ObjectLockRetentionModeGovernance, RetainUntilDate: aws.Time(time.Now().Add(time.Hour))}}); err != nil {
		t.Fatal(err)
	}
	rep, err := archive.Prune(base, 1)
	if err != nil {
		t.Fatalf("prune: %v", err)
	}
	if !slices.Equal(rep.Kept, []int64{1, 2}) || rep.Snapshots != 0 || rep.Files != 0 || len(rep.Retained) != 1 || !strings.HasSuffix(rep.Retained[0].Name, "/snapshots/000001.json") {
		t.Errorf("prune: %+v; want snapshot 1 kept as retained, with its files", rep)
	}
	if _, err := archive.Check(base); err != nil {
		t.Fatalf("check: %v", err)
	}
	expectEqual(t, base, v2)
	readSnapshot(t, base, 1, v1)
}

// lockedBucket creates a bucket with Object Lock enabled on s and returns
// its name.
func lockedBucket(t *testing.T, s *testenv.S3Server) string {
	t.Helper()
	bucket := "locked-" + strings.TrimPrefix(s.CreateBucket(t, "x"), "x-")
	if _, err := s.Client().CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(bucket), ObjectLockEnabledForBucket: aws.Bool(true)}); err != nil {
		t.Fatalf("creating a bucket with Object Lock: %v", err)
	}
	return bucket
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// objectsUnder lists the objects under dir of the archive at loc, as
// paths relative to it, sorted.
func objectsUnder(t *testing.T, loc, dir string) []string {
	t.Helper()
	st, err := archive.OpenStore(loc)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var out []string
	if err := st.Walk(dir, func(p string, _ int64) error { out = append(out, p); return nil }); err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// TestS3ObjectLockWithoutVersioning: versitygw locks objects without
// versioning (no versioning folder is configured), so, unlike AWS, where
// an Object Lock bucket is versioned and a delete leaves a marker over the
// retained version, it refuses to delete a retained object. A sync that
// replaces a run whose files are still retained commits the new version,
// which reads back, but stops with the server's refusal on one line
// naming the object it could not move; the old version's files stay in
// the table folders, and archive check names each. Once their retention
// has ended, the next write moves them to history/ and the archive checks
// clean.
func TestS3ObjectLockWithoutVersioning(t *testing.T) {
	s := testenv.SharedS3(t)
	bucket := lockedBucket(t, s)
	base := s.Location(bucket, "a")
	v1 := dataset.Canonical()
	write(t, base+"&object-lock=governance:5s", v1)
	var until time.Time
	for _, k := range objectsUnder(t, base, "runs") {
		h, err := s.Client().HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("a/" + k)})
		if err != nil || h.ObjectLockRetainUntilDate == nil {
			t.Fatalf("head %s: %v, %+v", k, err, h)
		}
		until = later(until, *h.ObjectLockRetainUntilDate)
	}
	before := objectsUnder(t, base, "runs")

	v2 := v1.Clone()
	v2.Runs[0].Run.Notes = "changed"
	dst, err := sinkparquet.New(base)
	if err != nil {
		t.Fatal(err)
	}
	_, cerr := transfer.Copy(context.Background(), memsrc.New(v2), dst, transfer.Options{})
	if err := dst.Close(); cerr == nil {
		cerr = err
	}
	if time.Now().After(until) {
		t.Skipf("the write took longer than v1's retention (until %v): nothing was refused", until)
	}
	t.Logf("the error: %v", cerr)
	// The run's table files are replaced together, up to 8 moves at once:
	// whichever retained object is refused first is named (runs/, params/ ...).
	named := regexp.MustCompile(`s3://` + regexp.QuoteMeta(bucket) + `/a/(runs|params|tags|metrics|logs|rich_values)/`)
	if cerr == nil || strings.Contains(cerr.Error(), "\n") || !named.MatchString(cerr.Error()) ||
		!strings.Contains(strings.ToLower(cerr.Error()), "object lock") {
		t.Fatalf("sync replacing a retained run: %v; want one line naming the retained object and the lock", cerr)
	}
	expectEqual(t, base, v2)
	// v1's version of the run stays in the table folder beside v2's.
	state, err := archive.LoadState(base)
	if err != nil {
		t.Fatal(err)
	}
	var current []string
	for _, r := range state.Manifest.Runs {
		for _, f := range r.Files {
			current = append(current, f.Path)
		}
	}
	var stale []string
	for _, k := range objectsUnder(t, base, "runs") {
		if !slices.Contains(current, k) {
			stale = append(stale, k)
		}
	}
	if len(stale) == 0 {
		t.Fatalf("no superseded file left in runs/: before %q, after %q", before, objectsUnder(t, base, "runs"))
	}
	rep, err := archive.Check(base)
	if err != nil {
		t.Fatalf("check: %v", err)
	}
	for _, k := range stale {
		if !strings.Contains(fmt.Sprint(rep.Notes), k+": an earlier version of this run's rows") {
			t.Errorf("archive check does not name the superseded %s: %v", k, rep.Notes)
		}
	}

	// Once the retention has ended, the next write moves them.
	time.Sleep(time.Until(until) + time.Second)
	write(t, base, v2)
	for _, k := range stale {
		if slices.Contains(objectsUnder(t, base, "runs"), k) {
			t.Errorf("%s is still in runs/ after the retention ended and a write", k)
		}
	}
	if rep, err := archive.Check(base); err != nil || len(rep.Notes) > 0 {
		t.Fatalf("check after the retention ended: %v %v", err, rep.Notes)
	}
	expectEqual(t, base, v2)
}
