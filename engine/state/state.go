// Package state is the resume ledger: an embedded SQLite file that records,
// per job and per run origin, what was committed where, so that a re-run
// skips finished runs and resumes the rest.
//
// A job is keyed by its redacted source and sink locations plus the options
// that change the output; harmless options (concurrency, retries) are not
// part of the key, so changing them keeps the state. Nothing secret is
// stored: locations are redacted by the caller and error texts pass through
// the Scrub function.
package state

import (
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"sync"
	"time"

	_ "modernc.org/sqlite" // the database/sql driver "sqlite"
)

// Entry is what the ledger knows about one run of one job.
type Entry struct {
	Origin      string // schema.Ref.String() of the run in the source
	DestID      string // the sink's id for it, when the sink reports one
	Status      string // "committed" or "failed"
	Attempts    int
	LastError   string
	Fingerprint string // source content fingerprint at commit time
	Updated     time.Time
	// Name is the run's name in the source when it was recorded, so that a
	// run gone from the source can be reported by name ("" in entries
	// written before version 12 of the ledger's runs table had it).
	Name string
	// Mark and Keys say what of a committed run's metric history the sink
	// holds, so that a grown run can be appended to: Mark is the token the
	// sink stored with the commit (sinks.Marked), Keys one cursor per
	// metric key, by key. Both are empty for runs committed without them
	// (by an earlier runferry, or to a sink that cannot append); such a run
	// is written whole when it changes.
	Mark string
	Keys []KeyCursor
	// Damage and FileProblems are the source's gaps a committed run was
	// copied with (transfer.RunResult's Damage and FileProblem): what the
	// source could not read, and the files it names but could not give.
	// A later job that finds the run unchanged reports them again, since
	// the copy is still incomplete. Empty in entries written before
	// version 13 of the ledger's runs table had them.
	Damage       []string
	FileProblems []string
	// InheritedDamage are the damage notes the run's source only carried
	// (transfer.RunResult's InheritedDamage): named again, as inherited,
	// when the run is found unchanged; they do not make the copy
	// incomplete.
	InheritedDamage []string
}

// gaps is how an entry's Damage and FileProblems are stored: JSON in the
// runs table's gaps column, "" for none.
type gaps struct {
	Damage          []string `json:"damage,omitempty"`
	FileProblems    []string `json:"file_problems,omitempty"`
	InheritedDamage []string `json:"inherited_damage,omitempty"`
}

func (e *Entry) encodeGaps(scrub func(string) string) (string, error) {
	if len(e.Damage) == 0 && len(e.FileProblems) == 0 && len(e.InheritedDamage) == 0 {
		return "", nil
	}
	g := gaps{}
	for _, d := range e.Damage {
		g.Damage = append(g.Damage, scrub(d))
	}
	for _, p := range e.FileProblems {
		g.FileProblems = append(g.FileProblems, scrub(p))
	}
	for _, d := range e.InheritedDamage {
		g.InheritedDamage = append(g.InheritedDamage, scrub(d))
	}
	b, err := json.Marshal(g)
	return string(b), err
}

func (e *Entry) decodeGaps(s string) error {
	if s == "" {
		return nil
	}
	var g gaps
	if err := json.Unmarshal([]byte(s), &g); err != nil {
		return fmt.Errorf("gaps of run %s: %w", e.Origin, err)
	}
	e.Damage, e.FileProblems, e.InheritedDamage = g.Damage, g.FileProblems, g.InheritedDamage
	return nil
}

// KeyCursor is what was copied of one metric key of a run: the first Count
// points of the key in the source's order, the last of them at LastStep and
// LastTime (Unix ms), and Digest, a digest of those Count points (see
// transfer's cursor), that tells cheaply whether the source's history still
// starts with them.
type KeyCursor struct {
	Key      string `json:"key"`
	Count    int64  `json:"count"`
	LastStep int64  `json:"last_step"`
	LastTime int64  `json:"last_time"`
	Digest   string `json:"digest"`
	// Hash is the state of the digest after the Count points (SHA-256's
	// binary marshalling, base64), kept for sources that read a run's
	// history from a step on (sources.TailReader), so that an append
	// goes on digesting from it without reading those points again; ""
	// for other sources.
	Hash string `json:"hash,omitempty"`
}

// Job identifies a transfer.
type Job struct {
	Source  string // redacted location
	Sink    string // redacted location
	Options string // canonical text of the options that change the output
}

// Key is the job's stable identifier.
func (j Job) Key() string {
	sum := sha256.Sum256([]byte(j.Source + "\x00" + j.Sink + "\x00" + j.Options))
	return hex.EncodeToString(sum[:16])
}

// Ledger is the state of one job in a ledger file. It is safe for
// concurrent use.
type Ledger struct {
	db    *sql.DB
	job   string
	mu    sync.Mutex
	Scrub func(string) string // applied to error texts before storing
	// previous is when the job was last opened before this Open (see
	// PreviousStart).
	previous time.Time
	// snap holds every entry of the job, read in one query at the first
	// Get (see Get); nil before, and for jobs with more than snapshotMax
	// entries. Put replaces the entries it holds and adds none.
	snap     map[string]storedEntry
	snapDone bool
	// putOutside is set once Put wrote an entry snap does not hold: from
	// then on an origin snap does not hold is looked up in the file.
	putOutside bool
	// readOnly is set by OpenReadOnly: Put refuses.
	readOnly bool
	// getStmt reads one entry from the file (see getFile), prepared at
	// its first use.
	getStmt *sql.Stmt
}

// storedEntry is an entry as the snapshot holds it: without its cursors'
// keys, which stay in the ledger file and are read by Get only for the
// entry asked for (kept for every run, they were most of what a job of
// many runs held: about 3 KB a run of 10 metrics).
type storedEntry struct {
	e Entry // without Keys
}

// snapshotMax bounds the entries Get reads at once (a few hundred bytes
// each, without their cursors' keys: at most about 4 MB). A larger job
// reads one entry a query (a prepared one), so that what a sync over a
// ledger of any number of runs holds does not grow with them (up to
// 200,000 entries were read whole, about 0.4 KB each).
var snapshotMax = 10_000

// PreviousStart is when this job was last started before this Open: the
// start of the previous sync of the same source, sink and options,
// whether it finished or not. It is zero for a job never run, and after
// an Open with restart (the earlier state is forgotten).
func (l *Ledger) PreviousStart() time.Time { return l.previous }

// DefaultPath returns the ledger file used when none is given:
// $XDG_STATE_HOME/runferry/ledger.db, else ~/.local/state/runferry/ledger.db.
func DefaultPath() (string, error) {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "runferry", "ledger.db"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no state directory: %w (use --state PATH)", err)
	}
	return filepath.Join(home, ".local", "state", "runferry", "ledger.db"), nil
}

const schemaSQL = `
CREATE TABLE IF NOT EXISTS jobs (
  job TEXT PRIMARY KEY, source TEXT NOT NULL, sink TEXT NOT NULL, options TEXT NOT NULL,
  created TEXT NOT NULL, updated TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
  job TEXT NOT NULL, origin TEXT NOT NULL, dest_id TEXT NOT NULL, status TEXT NOT NULL,
  attempts INTEGER NOT NULL, last_error TEXT NOT NULL, fingerprint TEXT NOT NULL, updated TEXT NOT NULL,
  PRIMARY KEY (job, origin));
CREATE TABLE IF NOT EXISTS cursors (
  job TEXT NOT NULL, origin TEXT NOT NULL, mark TEXT NOT NULL, keys TEXT NOT NULL,
  PRIMARY KEY (job, origin));
`

// Open opens (creating if needed) the ledger file at path and returns the
// state of job. With restart, the job's earlier state is discarded.
func Open(path string, job Job, restart bool) (*Ledger, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("state %s: %w", path, err)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)")
	if err != nil {
		return nil, fmt.Errorf("state %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(schemaSQL); err != nil {
		db.Close()
		return nil, fmt.Errorf("state %s: %w", path, err)
	}
	for _, c := range []struct{ name, decl string }{{"name", "TEXT NOT NULL DEFAULT ''"}, {"gaps", "TEXT NOT NULL DEFAULT ''"}} {
		if err := addColumn(db, c.name, c.decl); err != nil {
			db.Close()
			return nil, fmt.Errorf("state %s: %w", path, err)
		}
	}
	l := &Ledger{db: db, job: job.Key(), Scrub: func(s string) string { return s }}
	var previous string
	switch err := db.QueryRow(`SELECT updated FROM jobs WHERE job=?`, l.job).Scan(&previous); {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		db.Close()
		return nil, fmt.Errorf("state %s: %w", path, err)
	case !restart:
		l.previous, _ = time.Parse(time.RFC3339Nano, previous)
	}
	now := time.Now().UTC().Format(time.RFC3339Nano)
	if _, err := db.Exec(`INSERT INTO jobs VALUES (?,?,?,?,?,?) ON CONFLICT(job) DO UPDATE SET updated=excluded.updated`,
		l.job, job.Source, job.Sink, job.Options, now, now); err != nil {
		db.Close()
		return nil, fmt.Errorf("state %s: %w", path, err)
	}
	if restart {
		for _, q := range []string{`DELETE FROM runs WHERE job=?`, `DELETE FROM cursors WHERE job=?`} {
			if _, err := db.Exec(q, l.job); err != nil {
				db.Close()
				return nil, fmt.Errorf("state %s: %w", path, err)
			}
		}
	}
	return l, nil
}

// ErrReadOnly is what Put returns on a ledger opened with OpenReadOnly.
var ErrReadOnly = errors.New("ledger opened read only (dry run)")

// OpenReadOnly opens the ledger file at path to read the state of job
// without changing anything: the file is opened read only, the job's
// start is not recorded (PreviousStart is that of the last job opened
// with Open), and Put fails with ErrReadOnly. It returns a nil Ledger and
// no error when there is nothing to read: no file at path, or a file
// written before the ledger had every column this version reads. A dry
// run uses it to plan exactly as the job would, deletions included.
func OpenReadOnly(path string, job Job) (*Ledger, error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("state %s: %w", path, err)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		return nil, fmt.Errorf("state %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM pragma_table_info('runs') WHERE name IN ('name', 'gaps')`).Scan(&n); err != nil {
		db.Close()
		return nil, fmt.Errorf("state %s: %w", path, err)
	}
	if n != 2 {
		db.Close()
		return nil, nil
	}
	l := &Ledger{db: db, job: job.Key(), Scrub: func(s string) string { return s }, readOnly: true}
	var previous string
	switch err := db.QueryRow(`SELECT updated FROM jobs WHERE job=?`, l.job).Scan(&previous); {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		db.Close()
		return nil, fmt.Errorf("state %s: %w", path, err)
	default:
		l.previous, _ = time.Parse(time.RFC3339Nano, previous)
	}
	return l, nil
}

// addColumn adds a column of the runs table (name, gaps) to a ledger made
// before it existed; older entries get its default.
func addColumn(db *sql.DB, name, decl string) error {
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM pragma_table_info('runs') WHERE name=?`, name).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	_, err := db.Exec(`ALTER TABLE runs ADD COLUMN ` + name + ` ` + decl)
	return err
}

// Get returns the entry for origin, if any, with its cursors.
//
// The first Get reads every entry of the job in one query (a plan asks
// for every run's entry, and a query a run cost more than the rest of a
// no-change sync); later Gets answer from that snapshot, which this
// Ledger's Puts keep current for the entries it holds. An entry Put adds
// (a run new to the job) is not held in memory: once there is one, an
// origin the snapshot does not hold is read from the file (a job of many
// new runs keeps no entry a run). Entries another process writes into the same
// job afterwards are not seen (concurrent workers, such as shards, keep a
// ledger each). The snapshot holds no cursors' keys: Get reads those of
// the entry asked for from the file, with their mark (so that the mark
// returned is always the one of the keys returned). A job of more than
// snapshotMax entries is read one entry a query.
func (l *Ledger) Get(origin string) (Entry, bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.snapDone {
		if err := l.loadSnapshot(); err != nil {
			return Entry{}, false, err
		}
	}
	if l.snap != nil {
		st, ok := l.snap[origin]
		if !ok {
			if l.putOutside {
				return l.getFile(origin, true)
			}
			return Entry{}, false, nil
		}
		e := st.e
		if e.Mark != "" {
			var mark, keys sql.NullString
			err := l.db.QueryRow(`SELECT mark, keys FROM cursors WHERE job=? AND origin=?`, l.job, origin).Scan(&mark, &keys)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return Entry{}, false, err
			}
			e.Mark = ""
			if err == nil && mark.Valid && mark.String != "" {
				e.Mark = mark.String
				if err := json.Unmarshal([]byte(keys.String), &e.Keys); err != nil {
					return Entry{}, false, fmt.Errorf("cursors of run %s: %w", origin, err)
				}
			}
		}
		return e, true, nil
	}
	return l.getFile(origin, true)
}

// getFile reads the entry for origin from the ledger file, with its
// cursors' keys when withKeys (else Keys is nil and Mark set, as Head
// returns them); l.mu is held.
func (l *Ledger) getFile(origin string, withKeys bool) (Entry, bool, error) {
	var e Entry
	var updated, gapText string
	var mark, keys sql.NullString
	if l.getStmt == nil {
		st, err := l.db.Prepare(`SELECT r.origin, r.dest_id, r.status, r.attempts, r.last_error, r.fingerprint, r.updated, r.name, r.gaps, c.mark, c.keys
		FROM runs r LEFT JOIN cursors c ON c.job=r.job AND c.origin=r.origin WHERE r.job=? AND r.origin=?`)
		if err != nil {
			return Entry{}, false, err
		}
		l.getStmt = st
	}
	err := l.getStmt.QueryRow(l.job, origin).Scan(&e.Origin, &e.DestID, &e.Status, &e.Attempts, &e.LastError, &e.Fingerprint, &updated, &e.Name, &gapText, &mark, &keys)
	if errors.Is(err, sql.ErrNoRows) {
		return Entry{}, false, nil
	}
	if err != nil {
		return Entry{}, false, err
	}
	if err := e.decodeGaps(gapText); err != nil {
		return Entry{}, false, err
	}
	e.Updated, _ = time.Parse(time.RFC3339Nano, updated)
	if mark.Valid && mark.String != "" {
		e.Mark = mark.String
		if !withKeys {
			return e, true, nil
		}
		if err := json.Unmarshal([]byte(keys.String), &e.Keys); err != nil {
			return Entry{}, false, fmt.Errorf("cursors of run %s: %w", origin, err)
		}
	}
	return e, true, nil
}

// Head is Get without the cursors: the entry's Keys are nil (its Mark is
// set). A plan deciding from the fingerprint alone that a run is unchanged
// needs no more, and decoding every run's cursors was most of a no-change
// plan's ledger work. A job read one entry a query (see Get) reads the
// entry without its cursors' keys too.
func (l *Ledger) Head(origin string) (Entry, bool, error) {
	l.mu.Lock()
	if !l.snapDone {
		if err := l.loadSnapshot(); err != nil {
			l.mu.Unlock()
			return Entry{}, false, err
		}
	}
	defer l.mu.Unlock()
	if l.snap == nil {
		return l.getFile(origin, false)
	}
	st, ok := l.snap[origin]
	if !ok && l.putOutside {
		return l.getFile(origin, false)
	}
	return st.e, ok, nil
}

// loadSnapshot reads every entry of the job into l.snap, unless there are
// more than snapshotMax. l.mu is held.
func (l *Ledger) loadSnapshot() error {
	var n int
	if err := l.db.QueryRow(`SELECT COUNT(*) FROM runs WHERE job=?`, l.job).Scan(&n); err != nil {
		return err
	}
	if n > snapshotMax {
		l.snapDone = true
		return nil
	}
	rows, err := l.db.Query(`SELECT r.origin, r.dest_id, r.status, r.attempts, r.last_error, r.fingerprint, r.updated, r.name, r.gaps, c.mark
		FROM runs r LEFT JOIN cursors c ON c.job=r.job AND c.origin=r.origin WHERE r.job=?`, l.job)
	if err != nil {
		return err
	}
	defer rows.Close()
	snap := make(map[string]storedEntry, n)
	for rows.Next() {
		var e Entry
		var updated, gapText string
		var mark sql.NullString
		if err := rows.Scan(&e.Origin, &e.DestID, &e.Status, &e.Attempts, &e.LastError, &e.Fingerprint, &updated, &e.Name, &gapText, &mark); err != nil {
			return err
		}
		if err := e.decodeGaps(gapText); err != nil {
			return err
		}
		e.Updated, _ = time.Parse(time.RFC3339Nano, updated)
		st := storedEntry{e: e}
		if mark.Valid {
			st.e.Mark = mark.String
		}
		snap[e.Origin] = st
	}
	if err := rows.Err(); err != nil {
		return err
	}
	l.snap, l.snapDone = snap, true
	return nil
}

// Put records e, replacing any earlier entry for its origin, its cursors
// included (an entry without a Mark drops them), in one transaction. It
// returns only once the entry is durable.
func (l *Ledger) Put(e Entry) error {
	if l.readOnly {
		return ErrReadOnly
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if e.Updated.IsZero() {
		e.Updated = time.Now().UTC()
	}
	keys, err := json.Marshal(e.Keys)
	if err != nil {
		return err
	}
	gapText, err := e.encodeGaps(l.Scrub)
	if err != nil {
		return err
	}
	tx, err := l.db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.Exec(`INSERT INTO runs (job, origin, dest_id, status, attempts, last_error, fingerprint, updated, name, gaps)
		VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT(job, origin) DO UPDATE SET
		dest_id=excluded.dest_id, status=excluded.status, attempts=excluded.attempts,
		last_error=excluded.last_error, fingerprint=excluded.fingerprint, updated=excluded.updated, name=excluded.name,
		gaps=excluded.gaps`,
		l.job, e.Origin, e.DestID, e.Status, e.Attempts, l.Scrub(e.LastError), e.Fingerprint, e.Updated.Format(time.RFC3339Nano), e.Name, gapText); err != nil {
		return err
	}
	if e.Mark == "" {
		_, err = tx.Exec(`DELETE FROM cursors WHERE job=? AND origin=?`, l.job, e.Origin)
	} else {
		_, err = tx.Exec(`INSERT INTO cursors VALUES (?,?,?,?) ON CONFLICT(job, origin) DO UPDATE SET
			mark=excluded.mark, keys=excluded.keys`, l.job, e.Origin, e.Mark, string(keys))
	}
	if err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	if _, held := l.snap[e.Origin]; !held {
		// Written through: an entry the snapshot did not hold (a run
		// new to the job) is read back from the file when asked for, so
		// that what the ledger holds in memory does not grow with the
		// runs a job writes.
		l.putOutside = true
	} else {
		// As Get would read it back.
		st := storedEntry{e: e}
		st.e.Keys = nil
		st.e.LastError = l.Scrub(e.LastError)
		st.e.Damage, st.e.FileProblems, st.e.InheritedDamage = nil, nil, nil
		if err := st.e.decodeGaps(gapText); err != nil {
			return err
		}
		st.e.Updated, _ = time.Parse(time.RFC3339Nano, e.Updated.Format(time.RFC3339Nano))
		l.snap[e.Origin] = st
	}
	return nil
}

// Entries returns every entry of the job, ordered by origin, without
// their cursors' keys.
func (l *Ledger) Entries() ([]Entry, error) {
	var out []Entry
	for e, err := range l.All() {
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// All yields every entry of the job, ordered by origin, without their
// cursors' keys, one at a time: a job of any number of runs is read
// without holding them all. The ledger is locked until the loop ends: the
// loop's body must not call the Ledger's methods.
func (l *Ledger) All() iter.Seq2[Entry, error] {
	return func(yield func(Entry, error) bool) {
		l.mu.Lock()
		defer l.mu.Unlock()
		rows, err := l.db.Query(`SELECT origin, dest_id, status, attempts, last_error, fingerprint, updated, name FROM runs WHERE job=? ORDER BY origin`, l.job)
		if err != nil {
			yield(Entry{}, err)
			return
		}
		defer rows.Close()
		for rows.Next() {
			var e Entry
			var updated string
			if err := rows.Scan(&e.Origin, &e.DestID, &e.Status, &e.Attempts, &e.LastError, &e.Fingerprint, &updated, &e.Name); err != nil {
				yield(Entry{}, err)
				return
			}
			e.Updated, _ = time.Parse(time.RFC3339Nano, updated)
			if !yield(e, nil) {
				return
			}
		}
		if err := rows.Err(); err != nil {
			yield(Entry{}, err)
		}
	}
}

// Close closes the ledger file.
func (l *Ledger) Close() error {
	if l.getStmt != nil {
		l.getStmt.Close()
	}
	return l.db.Close()
}
