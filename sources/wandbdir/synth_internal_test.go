package wandbdir

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sources"
	"github.com/runferry/runferry/sources/dataset"
	"github.com/runferry/runferry/sources/sourcetest"
)

// A minimal `.wandb` writer for tests: W&B's framing (7-byte header, 32 KiB
// blocks, CRC-32/IEEE over type and payload) and records encoded by field
// number, as wandb_internal.proto numbers them.

type wandbWriter struct {
	w   *bufio.Writer
	pos int64
}

func newWandbWriter(w io.Writer) *wandbWriter {
	ww := &wandbWriter{w: bufio.NewWriterSize(w, 1<<20)}
	ww.w.Write([]byte{':', 'W', '&', 'B', 0xE1, 0xBE, 0})
	ww.pos = 7
	return ww
}

func (ww *wandbWriter) record(payload []byte) {
	first := true
	for {
		left := 32768 - int(ww.pos%32768)
		if left < 7 {
			ww.w.Write(make([]byte, left))
			ww.pos += int64(left)
			continue
		}
		n := min(len(payload), left-7)
		last := n == len(payload)
		typ := byte(map[[2]bool]byte{{true, true}: 1, {true, false}: 2, {false, false}: 3, {false, true}: 4}[[2]bool{first, last}])
		var h [7]byte
		binary.LittleEndian.PutUint32(h[:4], crc32.Update(crc32.ChecksumIEEE([]byte{typ}), crc32.IEEETable, payload[:n]))
		binary.LittleEndian.PutUint16(h[4:6], uint16(n))
		h[6] = typ
		ww.w.Write(h[:])
		ww.w.Write(payload[:n])
		ww.pos += int64(7 + n)
		payload, first = payload[n:], false
		if last {
			return
		}
	}
}

func (ww *wandbWriter) close() error { return ww.w.Flush() }

func msg(num protowire.Number, body []byte) []byte {
	return protowire.AppendBytes(protowire.AppendTag(nil, num, protowire.BytesType), body)
}

func str(num protowire.Number, s string) []byte { return msg(num, []byte(s)) }

func varint(num protowire.Number, v uint64) []byte {
	return protowire.AppendVarint(protowire.AppendTag(nil, num, protowire.VarintType), v)
}

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func timestamp(num protowire.Number, t time.Time) []byte {
	return msg(num, cat(varint(1, uint64(t.Unix())), varint(2, uint64(t.Nanosecond()))))
}

func runRecord(id, project string, start time.Time) []byte {
	return msg(17, cat(str(1, id), str(3, project), timestamp(17, start)))
}

// historyRecord writes one row in wandb-core's encoding (nested_key items).
func historyRecord(step int64, ts float64, values map[string]string) []byte {
	var items []byte
	add := func(key, value string) {
		items = append(items, msg(1, cat(str(2, key), str(16, value)))...)
	}
	for k, v := range values {
		add(k, v)
	}
	add("_step", fmt.Sprint(step))
	add("_timestamp", fmt.Sprint(ts))
	return msg(2, cat(items, msg(2, varint(1, uint64(step)))))
}

func exitRecord(code, runtime int) []byte {
	return msg(18, cat(varint(1, uint64(code)), varint(2, uint64(runtime))))
}

func writeRunFolder(t *testing.T, dir string, records ...[]byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "files"), 0o755); err != nil {
		t.Fatal(err)
	}
	id := strings.TrimPrefix(filepath.Base(dir)[strings.LastIndex(filepath.Base(dir), "-"):], "-")
	f, err := os.Create(filepath.Join(dir, "run-"+id+".wandb"))
	if err != nil {
		t.Fatal(err)
	}
	ww := newWandbWriter(f)
	for _, r := range records {
		ww.record(r)
	}
	if err := ww.close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

// local is the origin of a run or experiment without an entity whose run
// folder lies in dir: the folder's absolute, symlink-free path, "#", and
// PROJECT[/RUN_ID].
func local(t *testing.T, dir, id string) schema.Ref {
	t.Helper()
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		t.Fatal(err)
	}
	return schema.Ref{System: System, ID: filepath.ToSlash(real) + "#" + id}
}

// copyTree copies the folder src, modification times included, to a new
// temporary folder and returns it.
func copyTree(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "copy")
	if out, err := exec.Command("cp", "-a", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("cp -a %s: %v\n%s", src, err, out)
	}
	return dst
}

func sourceAt(t *testing.T, root string) *Source {
	t.Helper()
	src, err := New(Config{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// TestResumedStepsGoBack merges two segments of one run, the second
// restarting at step 1: its rows at steps below the first segment's last
// are dropped, counted in Damage, and steps stay non-decreasing.
func TestResumedStepsGoBack(t *testing.T) {
	root := t.TempDir()
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	writeRunFolder(t, filepath.Join(root, "wandb", "offline-run-20250101_000100-res1"),
		runRecord("res1", "p", t0.Add(time.Minute)),
		historyRecord(1, 1735689661, map[string]string{"loss": "0.5"}),
		historyRecord(2, 1735689662, map[string]string{"loss": "0.4"}),
		historyRecord(3, 1735689663, map[string]string{"loss": "0.3"}), exitRecord(0, 10))
	writeRunFolder(t, filepath.Join(root, "wandb", "offline-run-20250101_000000-res1"),
		runRecord("res1", "p", t0),
		historyRecord(0, 1735689600, map[string]string{"loss": "1"}),
		historyRecord(1, 1735689601, map[string]string{"loss": "0.9"}),
		historyRecord(5, 1735689605, map[string]string{"loss": "0.8"}), exitRecord(1, 5))
	sourcetest.Run(t, sourcetest.Opt{Open: func(t *testing.T) sources.Source { return sourceAt(t, root) },
		OpenOther: func(t *testing.T) sources.Source { return sourceAt(t, copyTree(t, root)) }})
	d, err := dataset.Read(context.Background(), sourceAt(t, root))
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Runs) != 1 {
		t.Fatalf("%d runs, want the two segments merged into 1", len(d.Runs))
	}
	r := d.Runs[0]
	var got []string
	for _, m := range r.Metrics {
		got = append(got, fmt.Sprintf("%s@%d=%g", m.Key, m.Step, m.Value))
	}
	if want := "loss@0=1 loss@1=0.9 loss@5=0.8"; strings.Join(got, " ") != want {
		t.Errorf("points %s, want %s (the second segment's rows 1..3 go back)", strings.Join(got, " "), want)
	}
	if want := []string{"3 history rows dropped: their _step went backwards"}; fmt.Sprint(r.Run.Damage) != fmt.Sprint(want) {
		t.Errorf("damage %q, want %q", r.Run.Damage, want)
	}
	if r.Run.Status != schema.StatusFinished || !r.Run.Start.Equal(t0) || !r.Run.End.Equal(t0.Add(time.Minute+5*time.Second)) {
		t.Errorf("status %s start %v end %v: want FINISHED, %v, %v (second segment's 10 s less the first's 5 s)",
			r.Run.Status, r.Run.Start, r.Run.End, t0, t0.Add(time.Minute+5*time.Second))
	}
}

// TestTruncatedLog reads a `.wandb` file cut in the middle of a record:
// the run keeps every row before the cut and reports the damage. Its
// records and its file are a minute old: a truncated end alone is what a
// live writer leaves, so the run is RUNNING.
func TestTruncatedLog(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "wandb", "run-20250101_000000-cut1")
	var recs [][]byte
	start := time.Now().Add(-time.Minute).Truncate(time.Second)
	recs = append(recs, runRecord("cut1", "p", start))
	for i := range 3000 {
		recs = append(recs, historyRecord(int64(i), float64(start.Unix())+float64(i)/100, map[string]string{"loss": fmt.Sprint(i)}))
	}
	writeRunFolder(t, dir, recs...)
	log := filepath.Join(dir, "run-cut1.wandb")
	fi, _ := os.Stat(log)
	if err := os.Truncate(log, fi.Size()*2/3+3); err != nil {
		t.Fatal(err)
	}
	d, err := dataset.Read(context.Background(), sourceAt(t, root))
	if err != nil {
		t.Fatal(err)
	}
	r := d.Runs[0]
	if len(r.Run.Damage) != 1 || !strings.HasPrefix(r.Run.Damage[0], "wandb/run-20250101_000000-cut1/run-cut1.wandb: offset ") {
		t.Errorf("damage %q, want one note naming the file and offset", r.Run.Damage)
	}
	n := len(r.Metrics)
	if n < 1500 || n >= 3000 || r.Metrics[n-1].Step != int64(n-1) || r.Run.Status != schema.StatusRunning {
		t.Errorf("%d points (last step %d), status %s: want the rows before the cut, RUNNING", n, r.Metrics[n-1].Step, r.Run.Status)
	}
}

// TestDanglingSymlink lists a dangling symlink under files/ with a
// Problem and a damage note, without failing the run.
func TestDanglingSymlink(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "run-20250101_000000-ln1")
	writeRunFolder(t, dir, runRecord("ln1", "p", time.Unix(1735689600, 0)))
	if err := os.Symlink("/nonexistent/target.bin", filepath.Join(dir, "files", "model.bin")); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "files", "ok.txt"), []byte("ok"), 0o644)
	d, err := dataset.Read(context.Background(), sourceAt(t, root))
	if err != nil {
		t.Fatal(err)
	}
	r := d.Runs[0]
	want := []dataset.File{{Path: "model.bin", Problem: "dangling symlink to /nonexistent/target.bin"}, {Path: "ok.txt", Content: []byte("ok")}}
	if fmt.Sprint(r.Files) != fmt.Sprint(want) {
		t.Errorf("files %+v, want %+v", r.Files, want)
	}
	if fmt.Sprint(r.Run.Damage) != "[run-20250101_000000-ln1/files/model.bin: dangling symlink to /nonexistent/target.bin]" {
		t.Errorf("damage %q", r.Run.Damage)
	}
}

// TestFingerprint checks that the fingerprint is stable and changes when a
// run file or the log changes.
func TestFingerprint(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "run-20250101_000000-fp1")
	writeRunFolder(t, dir, runRecord("fp1", "p", time.Unix(1735689600, 0)))
	src := sourceAt(t, root)
	run := schema.Run{Origin: local(t, root, "p/fp1")}
	fp := func() string {
		s, err := src.Fingerprint(context.Background(), run)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	a, b := fp(), fp()
	if a == "" || a != b {
		t.Fatalf("fingerprints %q %q: want equal, not empty", a, b)
	}
	newFile := filepath.Join(dir, "files", "new.txt")
	logFile := filepath.Join(dir, "run-fp1.wandb")
	stamp := time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	// Each change must change the fingerprint (the file system's times
	// are set back where a change must be seen by size alone).
	for _, c := range []struct {
		what   string
		change func()
	}{
		{"a new file in files/", func() { must(os.WriteFile(newFile, []byte("x"), 0o644)); must(os.Chtimes(newFile, stamp, stamp)) }},
		{"a file in files/ grown, its time kept", func() { must(os.WriteFile(newFile, []byte("xy"), 0o644)); must(os.Chtimes(newFile, stamp, stamp)) }},
		{"a file in files/ touched, its size kept", func() { later := stamp.Add(time.Nanosecond); must(os.Chtimes(newFile, later, later)) }},
		{"the log touched", func() { later := time.Now().Add(time.Hour); must(os.Chtimes(logFile, later, later)) }},
		{"the log replaced by one of the same size (written anew)", func() {
			data, err := os.ReadFile(logFile)
			must(err)
			data[len(data)-1] ^= 1
			must(os.WriteFile(logFile+".new", data, 0o644))
			must(os.Rename(logFile+".new", logFile))
		}},
		{"a file in files/ removed", func() { must(os.Remove(newFile)) }},
	} {
		before := fp()
		c.change()
		if after := fp(); after == before || after == "" {
			t.Errorf("%s: fingerprint %q then %q: want changed, not empty", c.what, before, after)
		}
	}
}

// TestLargeLogMemory streams a large `.wandb` file and checks that the heap
// stays far below the file's size (200 MB file, 100 MB budget; 40 MB with
// -short).
func TestLargeLogMemory(t *testing.T) {
	size := int64(200 << 20)
	if testing.Short() {
		size = 40 << 20
	}
	root := t.TempDir()
	dir := filepath.Join(root, "run-20250101_000000-big1")
	os.MkdirAll(dir, 0o755)
	f, err := os.Create(filepath.Join(dir, "run-big1.wandb"))
	if err != nil {
		t.Fatal(err)
	}
	ww := newWandbWriter(f)
	ww.record(runRecord("big1", "p", time.Unix(1735689600, 0)))
	values := map[string]string{}
	for k := range 20 {
		values[fmt.Sprintf("layer_%02d/grad_norm", k)] = "0.123456789012345"
	}
	rows := int64(0)
	for ; ww.pos < size; rows++ {
		ww.record(historyRecord(rows, 1735689600+float64(rows)/10, values))
	}
	ww.close()
	f.Close()

	src := sourceAt(t, root)
	runtime.GC()
	var ms runtime.MemStats
	var peak uint64
	points := int64(0)
	for page, err := range src.Metrics(context.Background(), local(t, root, "p/big1")) {
		if err != nil {
			t.Fatal(err)
		}
		points += int64(len(page))
		if points%(20*PageSize) == 0 {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
		}
	}
	runtime.ReadMemStats(&ms)
	peak = max(peak, ms.HeapInuse)
	if points != rows*20 {
		t.Errorf("%d points, want %d", points, rows*20)
	}
	if peak > 100<<20 {
		t.Errorf("heap in use reached %d MB reading a %d MB log", peak>>20, size>>20)
	}
	t.Logf("%d MB log, %d points, peak heap %d MB", size>>20, points, peak>>20)
}

// TestLogGoneAfterDiscovery: a run whose `.wandb` file vanished after the
// run folders were found is yielded with the error in its Damage, and the
// runs after it in its project are still listed.
func TestLogGoneAfterDiscovery(t *testing.T) {
	root := t.TempDir()
	start := time.Unix(1735689600, 0)
	for i, id := range []string{"gone1", "kept2", "kept3"} {
		writeRunFolder(t, filepath.Join(root, "wandb", "run-20250101_00000"+fmt.Sprint(i)+"-"+id),
			runRecord(id, "p", start.Add(time.Duration(i)*time.Minute)), exitRecord(0, 1))
	}
	src := sourceAt(t, root)
	var exps []schema.Experiment
	for e, err := range src.Experiments(context.Background()) {
		if err != nil {
			t.Fatal(err)
		}
		exps = append(exps, e)
	}
	if err := os.Remove(filepath.Join(root, "wandb", "run-20250101_000000-gone1", "run-gone1.wandb")); err != nil {
		t.Fatal(err)
	}
	var ids, damage []string
	for r, err := range src.Runs(context.Background(), exps[0].Origin) {
		if err != nil {
			t.Fatalf("listing stopped: %v", err)
		}
		ids = append(ids, r.Origin.ID)
		if r.Origin != local(t, filepath.Join(root, "wandb"), "p/"+r.Origin.ID[strings.LastIndexByte(r.Origin.ID, '/')+1:]) {
			t.Errorf("origin %s does not name the folder %s/wandb", r.Origin, root)
		}
		damage = append(damage, r.Damage...)
	}
	for i, id := range ids {
		ids[i] = id[strings.LastIndexByte(id, '#')+1:]
	}
	if want := []string{"p/gone1", "p/kept2", "p/kept3"}; !slices.Equal(ids, want) {
		t.Errorf("runs %q, want %q", ids, want)
	}
	if len(damage) != 1 || !strings.Contains(damage[0], "run-gone1.wandb") {
		t.Errorf("damage %q, want one note naming the vanished log", damage)
	}
}

// TestFolderIdentity: a run without an entity is named by the folder
// holding its run folder, alike whichever path reaches it (the folder, a
// tree above it, the run folder, a relative path, a symlink), and keeps its
// former origin PROJECT/RUN_ID for runs copied before; a copy of the folder
// elsewhere is another source; the entity option names it by entity.
func TestFolderIdentity(t *testing.T) {
	root := t.TempDir()
	runDir := filepath.Join(root, "wandb", "offline-run-20250101_000000-id1")
	writeRunFolder(t, runDir, runRecord("id1", "p", time.Unix(1735689600, 0)), exitRecord(0, 1))
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(root, link); err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	rel, err := filepath.Rel(wd, filepath.Join(root, "wandb"))
	if err != nil {
		t.Fatal(err)
	}
	want := local(t, filepath.Join(root, "wandb"), "p/id1")
	if !strings.HasPrefix(want.ID, "/") || !strings.HasSuffix(want.ID, "/wandb#p/id1") {
		t.Fatalf("origin %s", want)
	}
	originAt := func(cfg Config) (schema.Ref, schema.Ref, string) {
		src, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		d, err := dataset.Read(context.Background(), src)
		if err != nil || len(d.Runs) != 1 || len(d.Experiments) != 1 {
			t.Fatalf("reading %s: %v %s", cfg.Root, err, d.Describe())
		}
		if d.Runs[0].Run.Experiment != d.Experiments[0].Origin {
			t.Errorf("run %s in experiment %s, listed as %s", d.Runs[0].Run.Origin, d.Runs[0].Run.Experiment, d.Experiments[0].Origin)
		}
		return d.Runs[0].Run.Origin, d.Experiments[0].Origin, d.Experiments[0].Name
	}
	for _, path := range []string{root, filepath.Join(root, "wandb"), runDir, rel, link, filepath.Join(link, "wandb") + "/"} {
		run, exp, name := originAt(Config{Root: path})
		if run != want || exp != local(t, filepath.Join(root, "wandb"), "p") || name != "p" {
			t.Errorf("via %s: run %s, experiment %s named %q; want %s", path, run, exp, name, want)
		}
		src := sourceAt(t, path)
		if got := src.FormerOrigins(run); !slices.Equal(got, []schema.Ref{{System: System, ID: "p/id1"}}) {
			t.Errorf("former origins of %s: %v", run, got)
		}
		if got := src.FormerOrigins(exp); !slices.Equal(got, []schema.Ref{{System: System, ID: "p"}}) {
			t.Errorf("former origins of %s: %v", exp, got)
		}
	}
	if run, _, _ := originAt(Config{Root: copyTree(t, root)}); run == want {
		t.Errorf("a copy of the folder elsewhere has the same origin %s", run)
	}
	run, exp, name := originAt(Config{Root: root, Entity: "acme"})
	if run.ID != "acme/p/id1" || exp.ID != "acme/p" || name != "acme/p" {
		t.Errorf("with entity=acme: run %s, experiment %s named %q", run, exp, name)
	}
	if got := sourceAt(t, root).FormerOrigins(run); got != nil {
		t.Errorf("an origin with an entity has former origins %v", got)
	}
}
