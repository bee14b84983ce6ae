package wandbdir

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/runferry/runferry/internal/wandbfile"
	"github.com/runferry/runferry/schema"
	"golang.org/x/sync/errgroup"
)

// segment is one run folder: the part of a run written by one process. A
// run resumed three times has four segments.
type segment struct {
	dir string // absolute path of the run folder
	rel string // dir relative to the location's root, slash-separated, for messages
	// wandbFile is the run folder's `.wandb` transaction log, "" when it has
	// none (SDKs before 0.10, or x_skip_transaction_log).
	wandbFile string
	// legacy is set for the layout of SDKs before 0.10: run files at the top
	// of the folder instead of under files/.
	legacy bool

	id, entity, project string
	start               time.Time // RunRecord.start_time; zero if unknown
	// run is the `.wandb` file's first run record, nil if it has none
	// among its first records (see identify).
	run *wandbfile.Run
	// tailCache is what the end of the log tells (see runInfo.tail), nil
	// until read; guarded by the run's mu.
	tailCache *tailInfo
	// info is the `.wandb` log's Lstat when the folder was listed (nil
	// without a log); ident its identity (identOK: the system told it
	// whole), which the run record was read under (see identify).
	info    os.FileInfo
	ident   fileID
	identOK bool
	// cached is set when identify took the run record (and the tail, when
	// one was kept) from the log cache, without opening the log.
	cached bool
	// whole is the name the log's run records give the run, learnt by a
	// read of the whole log (walkWandbFile: a full read or a Metrics
	// pass) while the log kept one identity; nil until such a read. The
	// log cache keeps it as the log's name (see logCache.entry).
	whole atomic.Pointer[logName]
}

// logName is the name a `.wandb` log gives its run (the last run record
// that sets one: the SDK writes a run record again for run.name = ...
// after wandb.init), as read from the whole log while it had identity id;
// "" when no run record sets one.
type logName struct {
	id   fileID
	name string
}

// filesDir is the folder holding the segment's run files.
func (s *segment) filesDir() string {
	if s.legacy {
		return s.dir
	}
	return filepath.Join(s.dir, "files")
}

// name returns a path inside the segment as shown in damage notes.
func (s *segment) name(path string) string {
	rel, err := filepath.Rel(s.dir, path)
	if err != nil {
		return path
	}
	return pathJoin(s.rel, filepath.ToSlash(rel))
}

// pathJoin joins slash paths, treating "." as empty.
func pathJoin(a, b string) string {
	if a == "" || a == "." {
		return b
	}
	return a + "/" + b
}

// runInfo is one W&B run: every segment sharing a project and run id.
type runInfo struct {
	ref      schema.Ref // Run.Origin
	exp      schema.Ref // Experiment.Origin
	name     string     // Experiment.Name: ENTITY/PROJECT, or PROJECT without an entity
	id       string
	entity   string
	project  string
	segments []*segment // in start-time order

	mu        sync.Mutex
	console   *consolePlan  // nil until made (see consolePlan)
	artifacts *runArtifacts // nil until read (see artifactRecords)
}

// legacyFiles are the run files that mark a folder written by an SDK before
// 0.10 (no `.wandb` file, run files at the top of the folder).
var legacyFiles = []string{"wandb-history.jsonl", "wandb-events.jsonl", "wandb-summary.json"}

// filesMarkers are the run files that mark a 0.10+ run folder whose
// transaction log is missing.
var filesMarkers = []string{"wandb-metadata.json", "wandb-summary.json", "config.yaml"}

// findSegments walks root and returns every run folder below it (root
// itself included), and what it could not read: folders it cannot list,
// `.wandb` files it cannot open, and run folders that hold no log to read
// (see runFolder), each as a problem naming its path. Symlinked
// directories are not followed, so the `latest-run` link never yields a run
// twice; `.git` folders are skipped. Only an unreadable root is an error.
func findSegments(ctx context.Context, root string) (segs []*segment, problems []string, err error) {
	var walk func(dir, rel string) error
	walk = func(dir, rel string) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			if rel == "" {
				return err
			}
			problems = append(problems, fmt.Sprintf("%s: unreadable folder (%v): nothing in it was read", dir, cause(err)))
			return nil
		}
		if found, isRun, probs := runFolder(dir, rel, entries); isRun {
			segs = append(segs, found...)
			problems = append(problems, probs...)
			return nil
		}
		for _, e := range entries {
			if !e.IsDir() || e.Name() == ".git" { // symlinks are not IsDir
				continue
			}
			if err := walk(filepath.Join(dir, e.Name()), pathJoin(rel, e.Name())); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(root, ""); err != nil {
		return nil, nil, err
	}
	return segs, problems, nil
}

// cause is the reason of a file-system error without the path it names
// (the caller names it).
func cause(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// runFolder tells whether dir is a run folder and returns its segments: one
// per `.wandb` file (SDK 0.10+), or one for a pre-0.10 folder (history,
// events or summary at its top). A `.wandb` file that cannot be opened
// gives no segment but a problem. A folder named like a run folder
// (run-, offline-run-, dryrun-<timestamp>-<id>), or whose files/ holds
// wandb-metadata.json, wandb-summary.json or config.yaml, but that has
// neither a `.wandb` log nor pre-0.10 history, is a run folder with no
// segment and a problem: it is reported, not copied as a run without
// history.
func runFolder(dir, rel string, entries []os.DirEntry) (segs []*segment, isRun bool, problems []string) {
	names := map[string]bool{}
	for _, e := range entries {
		names[e.Name()] = e.Type().IsRegular()
		if !e.Type().IsRegular() || !strings.HasSuffix(e.Name(), ".wandb") {
			continue
		}
		isRun = true
		path := filepath.Join(dir, e.Name())
		// Readable as its mode bits show it (readableByMode), else as an
		// open finds it: a log the bits show readable is not opened here.
		info, err := e.Info()
		if err == nil && !readableByMode(info) {
			var f *os.File
			if f, err = openLog(path); err == nil {
				f.Close()
			}
		}
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: unreadable (%v): this run folder was not read", path, cause(err)))
			continue
		}
		segs = append(segs, &segment{dir: dir, rel: rel, wandbFile: path, info: info})
	}
	if isRun {
		return segs, true, problems
	}
	for _, f := range legacyFiles {
		if names[f] {
			return []*segment{{dir: dir, rel: rel, legacy: true}}, true, nil
		}
	}
	marked := folderPattern.MatchString(filepath.Base(dir))
	for _, f := range filesMarkers {
		if fi, err := os.Stat(filepath.Join(dir, "files", f)); err == nil && fi.Mode().IsRegular() {
			marked = true
		}
	}
	if marked {
		return nil, true, []string{fmt.Sprintf("%s: run folder without a .wandb log or pre-0.10 history "+
			"(wandb-history.jsonl): not copied", dir)}
	}
	return nil, false, nil
}

// headerRecords bounds how many records identify reads looking for the run
// record, which writers put second.
const headerRecords = 64

// identify fills in the segment's run id, entity, project and start time:
// from the run record of its `.wandb` file, else from the file name
// (`run-<id>.wandb`), else (no `.wandb`) from wandb-metadata.json (start;
// project, which SDKs before 0.10 kept there) and the folder name. A log
// whose identity (the Lstat of its folder's listing) is the one cache
// holds an entry for is not opened: its run record and tail come from the
// entry (idcache.go).
func (s *segment) identify(cache *logCache) {
	if s.wandbFile != "" {
		var rr *wandbfile.Run
		fi := s.info
		if fi == nil {
			fi, _ = os.Stat(s.wandbFile)
		}
		if fi != nil {
			s.ident, s.identOK = identityOf(fi)
		}
		if e, ok := cache.lookup(s.wandbFile, s.ident, s.identOK); ok {
			rr, s.cached = e.apply(s), true
		} else if fi != nil && fi.Size() <= tailBytes {
			// A small log is read once, for its run record and its tail
			// (kept as runInfo.tail keeps it).
			t, run := scanTail(s, fi.Size(), true, false, tailBytes)
			t.id = s.ident
			s.tailCache, rr = &t, run
		} else {
			rr = firstRunRecord(s.wandbFile)
		}
		if rr != nil && rr.RunID != "" {
			s.id, s.entity, s.project, s.start = rr.RunID, rr.Entity, rr.Project, rr.StartTime
			// Only what discovery and the light header use is kept, alike
			// whether read or taken from the cache (a full read decodes
			// the run record again).
			s.run = &wandbfile.Run{RunID: rr.RunID, Entity: rr.Entity, Project: rr.Project,
				DisplayName: rr.DisplayName, StartTime: rr.StartTime}
			return
		}
		s.id = strings.TrimSuffix(strings.TrimPrefix(filepath.Base(s.wandbFile), "run-"), ".wandb")
		return
	}
	s.id = idFromFolder(filepath.Base(s.dir))
	if md := readMetadata(filepath.Join(s.filesDir(), "wandb-metadata.json")); md != nil {
		s.start, s.project = md.StartedAt, md.Project
	}
}

// firstRunRecord returns the run record of a `.wandb` file, nil if the file
// cannot be read or has none among its first records, with the name of a
// later run record among them as its DisplayName (a run renamed right after
// wandb.init). Once the first run record is found no byte more is read:
// the later records looked at (up to headerRecords in all) are those the
// reads so far brought in whole (opening the log reads its first blocks to
// tell their layout), so a large log is not read further for a rename.
// Later renames are seen by the header in the log's tail, and by a full
// read (segment.whole).
func firstRunRecord(path string) *wandbfile.Run {
	f, err := openLog(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	src := &readSoFar{f: f, limit: -1}
	rd, err := wandbfile.NewReader(src, path)
	if err != nil {
		return nil
	}
	var first *wandbfile.Run
	for range headerRecords {
		payload, _, err := rd.Next()
		if err != nil {
			break
		}
		if first != nil {
			if kind, _, clean := wandbfile.PeekRecord(payload); clean && fastPath && kind != wandbfile.KindRun {
				continue
			}
		}
		rec, err := wandbfile.Decode(payload)
		if err != nil || rec.Run == nil {
			continue
		}
		if first == nil {
			first = rec.Run
			src.limit = src.read
		} else if rec.Run.DisplayName != "" {
			renamed := *first
			renamed.DisplayName = rec.Run.DisplayName
			first = &renamed
		}
	}
	return first
}

// readSoFar reads f until limit bytes were read in all (-1: no limit),
// then ends as at the end of the file; Stat is f's (wandbfile.NewReader
// sizes its buffer by it).
type readSoFar struct {
	f           *os.File
	read, limit int64
}

func (r *readSoFar) Read(p []byte) (int, error) {
	if r.limit >= 0 {
		if r.read >= r.limit {
			return 0, io.EOF
		}
		p = p[:min(int64(len(p)), r.limit-r.read)]
	}
	n, err := r.f.Read(p)
	r.read += int64(n)
	return n, err
}

func (r *readSoFar) Stat() (fs.FileInfo, error) { return r.f.Stat() }

// openLog opens a `.wandb` log for discovery and the light headers; tests
// count the opens through it.
var openLog = os.Open

// folderPattern matches run folder names: <mode>-<YYYYMMDD_HHMMSS>-<id>.
var folderPattern = regexp.MustCompile(`^(?:offline-run|run|dryrun)-\d{8}_\d{6}-(.+)$`)

// idFromFolder is the last resort for a run id, used only for folders with
// no `.wandb` file: the part of the folder name after the timestamp, or the
// whole name.
func idFromFolder(name string) string {
	if m := folderPattern.FindStringSubmatch(name); m != nil {
		return m[1]
	}
	return name
}

// projectFromPath names the project of a run whose run record has none: the
// folder holding the `wandb/` (or `.wandb/`) folder, else the parent folder.
func projectFromPath(dir string) string {
	parent := filepath.Dir(dir)
	if b := filepath.Base(parent); b == "wandb" || b == ".wandb" {
		parent = filepath.Dir(parent)
	}
	name := filepath.Base(parent)
	if name == "" || name == "." || name == string(filepath.Separator) {
		return "wandb"
	}
	return name
}

// groupRuns merges segments into runs by (project, run id), orders each
// run's segments by start time, and names the run and its experiment.
// defaultEntity is used for runs whose segments name no entity.
func groupRuns(segs []*segment, defaultEntity string) []*runInfo {
	byKey := map[[2]string]*runInfo{}
	var runs []*runInfo
	for _, s := range segs {
		if s.project == "" {
			s.project = projectFromPath(s.dir)
		}
		key := [2]string{s.project, s.id}
		ri := byKey[key]
		if ri == nil {
			ri = &runInfo{id: s.id, project: s.project}
			byKey[key] = ri
			runs = append(runs, ri)
		}
		ri.segments = append(ri.segments, s)
	}
	for _, ri := range runs {
		slices.SortFunc(ri.segments, func(a, b *segment) int {
			return cmp.Or(a.start.Compare(b.start), cmp.Compare(a.rel, b.rel), cmp.Compare(a.wandbFile, b.wandbFile))
		})
		for _, s := range ri.segments {
			if s.entity != "" {
				ri.entity = s.entity // the last one named wins: later segments were synced
			}
		}
		if ri.entity == "" {
			ri.entity = defaultEntity
		}
		ri.name = ri.project
		expID := folderIdentity(filepath.Dir(ri.segments[0].dir)) + "#" + ri.project
		if ri.entity != "" {
			ri.name = ri.entity + "/" + ri.project
			expID = ri.name
		}
		ri.exp = schema.Ref{System: System, ID: expID}
		ri.ref = schema.Ref{System: System, ID: expID + "/" + ri.id}
	}
	slices.SortFunc(runs, func(a, b *runInfo) int {
		return cmp.Or(a.segments[0].start.Compare(b.segments[0].start), cmp.Compare(a.ref.ID, b.ref.ID))
	})
	return runs
}

// folderIdentity names, in the origins of runs without an entity, the
// folder holding their run folders (usually a wandb/ folder): its absolute
// path with symbolic links resolved and in slash form, so that every path
// by which the folder is given (relative, through a symlink, the folder
// itself or a tree above it, or one run folder in it) names it alike. A
// folder moved or copied elsewhere is another folder; the entity option
// makes origins independent of where the runs lie.
func folderIdentity(dir string) string {
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real
	}
	return filepath.ToSlash(filepath.Clean(dir))
}

// formerOrigin returns the origin runferry gave a W&B experiment or run
// without an entity before origins named their folder (PROJECT[/RUN_ID]),
// or false for an origin that has an entity.
func formerOrigin(ref schema.Ref) (schema.Ref, bool) {
	if ref.System != System || !strings.HasPrefix(ref.ID, "/") {
		return schema.Ref{}, false
	}
	i := strings.LastIndexByte(ref.ID, '#')
	if i < 0 || i == len(ref.ID)-1 {
		return schema.Ref{}, false
	}
	return schema.Ref{System: System, ID: ref.ID[i+1:]}, true
}

// errNoRuns is returned when a location holds no run folder.
var errNoRuns = errors.New("no W&B run folder found (looked for run-*.wandb files and pre-0.10 wandb-history.jsonl)")

// discover finds and identifies every run under root, and returns what it
// could not read (see findSegments). A root holding no run folder at all is
// an error.
func discover(ctx context.Context, root, defaultEntity string, cache *logCache) ([]*runInfo, []string, error) {
	segs, problems, err := findSegments(ctx, root)
	if err != nil {
		return nil, nil, err
	}
	cache.load()
	if len(segs) == 0 && len(problems) == 0 {
		return nil, nil, fmt.Errorf("%s: %w", root, errNoRuns)
	}
	// Each segment reads the start of its own log; a few goroutines
	// overlap those reads (mostly waiting on the file system).
	var g errgroup.Group
	g.SetLimit(identifyWorkers)
	for _, s := range segs {
		g.Go(func() error {
			if err := ctx.Err(); err != nil {
				return err
			}
			s.identify(cache)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, nil, err
	}
	return groupRuns(segs, defaultEntity), problems, nil
}

// identifyWorkers is how many segments discover identifies at once.
const identifyWorkers = 4

// readCapped reads at most limit bytes of a small run file (metadata,
// summary, config); larger files are an error rather than a memory spike.
func readCapped(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", filepath.Base(path), limit)
	}
	return b, nil
}
