package wandbdir

import (
	"bytes"
	"crypto/sha256"
	"encoding/gob"
	"encoding/hex"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/runferry/runferry/internal/wandbfile"
	"github.com/runferry/runferry/sources"
)

// The log cache: what discovery and the light headers read from each
// `.wandb` log (its run record's identity fields and name, and what its
// tail tells), and the name a read of the whole log (the copy's) found it
// gives the run (a rename after wandb.init), kept between jobs beside the job's ledger
// (sources.InputCache), keyed by the log's path and trusted only while the
// log's identity is unchanged. A no-change sync then opens no log: finding
// a run is a directory read and a stat of its log.
//
// What the cache trusts (fileID): that a log whose device, inode, size,
// modification time and change time (ctime) are all what they were when it
// was read holds what it held then. The change time is set by the kernel
// to the current time on every write, truncation, rename onto the path,
// chmod, chown, ACL or extended-attribute change, and no system call sets
// it to a chosen value: a rewrite that keeps the size and sets the
// modification time back (os.Chtimes, touch -d) still moves it, and a log
// replaced by another file has another inode. Two writes within one tick
// of the file system's clock can leave the same change time, so a log
// whose change time is within racyWindow of the job's start (or later) is
// not kept: the next job reads it again (as git treats "racily clean"
// index entries). The window assumes the file system's clock agrees with
// this machine's within it (a network file system's server clock far
// ahead of the client's defeats it: use --force there, or --no-state).
//
// A cache file is ignored whole (and written anew at the end of the job)
// when its checksum does not match, or it was written by another format
// version or another build of runferry, on another machine (by
// /etc/machine-id, else the host name), or for another root folder.
// Nothing in it is secret: paths, file identities, run ids, entity,
// project and display names, exit codes and damage notes (all of which the
// ledger and the report hold too); not the run's config, tags or settings.

// fileID is the identity of a log: the cache holds a log's entry only
// while every field is unchanged.
type fileID struct {
	Dev, Ino     uint64
	Size         int64
	Mtime, Ctime int64 // Unix nanoseconds
}

// cachedLog is what the cache holds for one log.
type cachedLog struct {
	ID fileID
	// The run record among the log's first records (identify): an entry
	// is kept only for a log that has one. DisplayName is the name the
	// whole log gives the run when a read of the whole log (segment.whole:
	// the copy's) saw it with ID, else the first records' (identify).
	RunID, Entity, Project, DisplayName string
	StartTime                           time.Time
	// Tail is the log's tailInfo (without its times when !Tail.Timed),
	// when one was read whole while the log had ID.
	HasTail bool
	Tail    cachedTail
}

// cachedTail is a tailInfo in the cache.
type cachedTail struct {
	HasExit               bool
	ExitCode, ExitRuntime int32
	ExitNotComplete       bool
	Preempting, Timed     bool
	LastTime              int64
	Name                  string // tailInfo.name
	Damage                []string
	Corrupt               bool
}

// cacheFile is the content of a cache file after its magic line and
// before its checksum.
type cacheFile struct {
	Format  int
	Build   string // the runferry build (buildID)
	Machine string // machineID
	Root    string // the source's root folder
	Logs    map[string]cachedLog
}

const (
	// cacheMagic starts every cache file.
	cacheMagic = "runferry wandbdir log cache\n"
	// cacheFormat is the layout and meaning of cachedLog: raise it when
	// either changes (or when what identify or readTail read changes).
	cacheFormat = 2
	// maxCacheFile bounds the file read: a larger one is ignored.
	maxCacheFile = 1 << 30
)

// racyWindow is how recent a log's change time may be, against the job's
// start, for its entry to be kept (see above); tests shorten it.
var racyWindow = 5 * time.Second

// logCache is one source's log cache: the entries loaded when the runs
// were found (old), and where and when to write the new ones.
type logCache struct {
	file  string    // the cache file
	root  string    // the source's root
	fresh bool      // trust nothing loaded (sources.InputCache.Fresh)
	start time.Time // the job's start: entries changed since start-racyWindow are not kept
	old   map[string]cachedLog
}

// newLogCache returns the log cache of a source reading root for a job
// with cache c, nil when c names no ledger.
func newLogCache(c sources.InputCache, root string, start time.Time) *logCache {
	if c.Path == "" {
		return nil
	}
	sum := sha256.Sum256([]byte(root))
	return &logCache{
		file:  c.Path + ".wandb-" + hex.EncodeToString(sum[:8]) + ".cache",
		root:  root,
		fresh: c.Fresh,
		start: start,
	}
}

// load reads the cache file, unless the job trusts no cache; a missing,
// damaged or foreign file (see above) leaves the cache empty.
func (c *logCache) load() {
	if c == nil || c.fresh {
		return
	}
	c.old = readCacheFile(c.file, c.root)
}

// readCacheFile returns the entries of the cache file at path written for
// root by this build on this machine, nil for any other file.
func readCacheFile(path, root string) (logs map[string]cachedLog) {
	fi, err := os.Stat(path)
	if err != nil || fi.Size() > maxCacheFile {
		return nil
	}
	b, err := os.ReadFile(path)
	if err != nil || len(b) < len(cacheMagic)+sha256.Size || !bytes.HasPrefix(b, []byte(cacheMagic)) {
		return nil
	}
	body, sum := b[:len(b)-sha256.Size], b[len(b)-sha256.Size:]
	if got := sha256.Sum256(body); !bytes.Equal(got[:], sum) {
		return nil
	}
	defer func() {
		if recover() != nil { // a decoder failure is a damaged file, not a crash
			logs = nil
		}
	}()
	var f cacheFile
	if err := gob.NewDecoder(bytes.NewReader(body[len(cacheMagic):])).Decode(&f); err != nil {
		return nil
	}
	if f.Format != cacheFormat || f.Build != buildID() || f.Machine != machineID() || f.Root != root {
		return nil
	}
	return f.Logs
}

// lookup returns the entry of the log at path when its identity is id
// (ok: identityOf could tell it).
func (c *logCache) lookup(path string, id fileID, ok bool) (cachedLog, bool) {
	if c == nil || !ok {
		return cachedLog{}, false
	}
	e, found := c.old[path]
	return e, found && e.ID == id
}

// apply sets what the entry holds on seg (as identify and readTail would)
// and returns its run record.
func (e cachedLog) apply(seg *segment) *wandbfile.Run {
	if e.HasTail {
		t := tailInfo{
			preempting: e.Tail.Preempting, lastTime: e.Tail.LastTime, timed: e.Tail.Timed, name: e.Tail.Name,
			damage: slices.Clone(e.Tail.Damage), corrupt: e.Tail.Corrupt, complete: true, id: e.ID,
		}
		if e.Tail.HasExit {
			t.exit = &wandbfile.Exit{ExitCode: e.Tail.ExitCode, Runtime: e.Tail.ExitRuntime, NotComplete: e.Tail.ExitNotComplete}
		}
		seg.tailCache = &t
	}
	return &wandbfile.Run{RunID: e.RunID, Entity: e.Entity, Project: e.Project, DisplayName: e.DisplayName, StartTime: e.StartTime}
}

// entry is what the cache is to hold for seg, ok false for a segment
// whose entry is not kept: no `.wandb` log or run record, an identity the
// system does not tell, or a change time within racyWindow of the job's
// start. Its tail is kept when one was read whole while the log had the
// identity the run record was read under.
func (c *logCache) entry(ri *runInfo, seg *segment) (cachedLog, bool) {
	if seg.wandbFile == "" || !seg.identOK || seg.run == nil || seg.run.RunID == "" {
		return cachedLog{}, false
	}
	if seg.ident.Ctime >= c.start.Add(-racyWindow).UnixNano() {
		return cachedLog{}, false
	}
	r := seg.run
	e := cachedLog{ID: seg.ident, RunID: r.RunID, Entity: r.Entity, Project: r.Project, DisplayName: r.DisplayName, StartTime: r.StartTime}
	if w := seg.whole.Load(); w != nil && w.id == seg.ident && w.name != "" {
		e.DisplayName = w.name
	}
	ri.mu.Lock()
	t := seg.tailCache
	ri.mu.Unlock()
	if t != nil && t.complete && t.id == seg.ident {
		e.HasTail = true
		e.Tail = cachedTail{Preempting: t.preempting, Timed: t.timed, LastTime: t.lastTime, Name: t.name,
			Damage: slices.Clone(t.damage), Corrupt: t.corrupt}
		if t.exit != nil {
			e.Tail.HasExit, e.Tail.ExitCode, e.Tail.ExitRuntime, e.Tail.ExitNotComplete = true, t.exit.ExitCode, t.exit.Runtime, t.exit.NotComplete
		}
	}
	return e, true
}

// save writes the entries of runs' logs (only those: a log no longer
// found is dropped), unless they are what was loaded. The file is written
// beside its final name and renamed over it, so a reader sees the old or
// the new whole; a failure leaves the old file (or none) and the next job
// reads the logs again.
func (c *logCache) save(runs []*runInfo) error {
	if c == nil {
		return nil
	}
	logs := map[string]cachedLog{}
	for _, ri := range runs {
		for _, seg := range ri.segments {
			if e, ok := c.entry(ri, seg); ok {
				logs[seg.wandbFile] = e
			}
		}
	}
	if !c.fresh && sameLogs(logs, c.old) {
		return nil
	}
	var buf bytes.Buffer
	buf.WriteString(cacheMagic)
	if err := gob.NewEncoder(&buf).Encode(cacheFile{Format: cacheFormat, Build: buildID(), Machine: machineID(), Root: c.root, Logs: logs}); err != nil {
		return err
	}
	sum := sha256.Sum256(buf.Bytes())
	buf.Write(sum[:])
	dir := filepath.Dir(c.file)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, filepath.Base(c.file)+".tmp-*")
	if err != nil {
		return err
	}
	_, werr := tmp.Write(buf.Bytes())
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp.Name(), c.file)
	}
	if werr != nil {
		os.Remove(tmp.Name())
	}
	return werr
}

// sameLogs reports whether a and b hold the same entries.
func sameLogs(a, b map[string]cachedLog) bool {
	if len(a) != len(b) {
		return false
	}
	for k, x := range a {
		y, ok := b[k]
		if !ok || !x.equal(y) {
			return false
		}
	}
	return true
}

// equal reports whether e and o are the same entry.
func (e cachedLog) equal(o cachedLog) bool {
	et, ot := e.Tail, o.Tail
	return e.ID == o.ID && e.RunID == o.RunID && e.Entity == o.Entity && e.Project == o.Project &&
		e.DisplayName == o.DisplayName && e.StartTime.Equal(o.StartTime) && e.HasTail == o.HasTail &&
		et.HasExit == ot.HasExit && et.ExitCode == ot.ExitCode && et.ExitRuntime == ot.ExitRuntime &&
		et.ExitNotComplete == ot.ExitNotComplete && et.Preempting == ot.Preempting && et.Timed == ot.Timed &&
		et.LastTime == ot.LastTime && et.Name == ot.Name && et.Corrupt == ot.Corrupt && slices.Equal(et.Damage, ot.Damage)
}

// buildID names this build of runferry: its main module's version and VCS
// revision (with "+modified" for a build from a changed tree), so that a
// cache written by another build is not trusted.
var buildID = sync.OnceValue(func() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	id := bi.Main.Path + "@" + bi.Main.Version
	for _, s := range bi.Settings {
		switch {
		case s.Key == "vcs.revision":
			id += " " + s.Value
		case s.Key == "vcs.modified" && s.Value == "true":
			id += "+modified"
		}
	}
	return id
})

// machineID names this machine: /etc/machine-id (systemd's, stable across
// reboots), else the host name. An inode number means nothing on another
// machine.
var machineID = sync.OnceValue(func() string {
	for _, p := range []string{"/etc/machine-id", "/var/lib/dbus/machine-id"} {
		if b, err := os.ReadFile(p); err == nil {
			if s := strings.TrimSpace(string(b)); s != "" {
				return "machine-id:" + s
			}
		}
	}
	if h, err := os.Hostname(); err == nil {
		return "host:" + h
	}
	return "unknown"
})
