package transfer

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	_ "modernc.org/sqlite" // the database/sql driver "sqlite"
)

// originsInMemory is how many notes an originIndex holds in memory before
// it writes them to its database (a variable so that tests can make every
// note go through the database).
var originsInMemory = 2048

// bg is the context of an originIndex's queries: local, short, and not
// to be cut by the job's cancellation (which the job reports as such, not
// as a failure of its notes).
var bg = context.Background()

// originIndex is what a job's plan notes of each experiment and run it
// lists: what names it, by kind and origin (to find a second one with the
// same origin, see sameOrigin), and the origins listed, former origins
// included (to find the runs deleted at the source, see deletes). It
// holds at most originsInMemory notes in memory; the others are in a
// private temporary SQLite database, which SQLite keeps in a file of its
// temporary folder (its page cache bounded) and removes when it is closed.
// So what a job holds does not grow with the runs it lists (a map of every
// origin was about 200 bytes a run). A job of fewer notes never opens the
// database. Its methods are not safe for concurrent use (the caller holds
// job.mu).
type originIndex struct {
	// names and seen are the notes not yet written to the database: what
	// names the experiment or run with a key (kind NUL origin), and the
	// origins listed.
	names map[string]string
	seen  map[string]bool
	db    *sql.DB
	conn  *sql.Conn // the database's one connection: it lives as long as conn
}

// name notes that the experiment or run with key is named what, unless
// a note of key is there already: then it returns that note's name and
// true.
func (x *originIndex) name(key, what string) (before string, dup bool, err error) {
	if before, dup := x.names[key]; dup {
		return before, true, nil
	}
	if x.conn != nil {
		switch err := x.conn.QueryRowContext(bg, `SELECT what FROM names WHERE key=?`, key).Scan(&before); {
		case err == nil:
			return before, true, nil
		case !errors.Is(err, sql.ErrNoRows):
			return "", false, err
		}
	}
	if x.names == nil {
		x.names = map[string]string{}
	}
	x.names[key] = what
	return "", false, x.spill()
}

// list notes that origin was listed.
func (x *originIndex) list(origin string) error {
	if x.seen == nil {
		x.seen = map[string]bool{}
	}
	x.seen[origin] = true
	return x.spill()
}

// listed reports whether origin was listed.
func (x *originIndex) listed(origin string) (bool, error) {
	if x.seen[origin] {
		return true, nil
	}
	if x.conn == nil {
		return false, nil
	}
	var one int
	switch err := x.conn.QueryRowContext(bg, `SELECT 1 FROM seen WHERE origin=?`, origin).Scan(&one); {
	case err == nil:
		return true, nil
	case errors.Is(err, sql.ErrNoRows):
		return false, nil
	default:
		return false, err
	}
}

// spill writes the notes held in memory to the database, in one
// transaction, once there are originsInMemory of them.
func (x *originIndex) spill() error {
	if len(x.names)+len(x.seen) < originsInMemory {
		return nil
	}
	if x.conn == nil {
		if err := x.open(); err != nil {
			return fmt.Errorf("the origins listed: temporary database: %w", err)
		}
	}
	tx, err := x.conn.BeginTx(bg, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for k, v := range x.names {
		if _, err := tx.ExecContext(bg, `INSERT INTO names VALUES (?,?)`, k, v); err != nil {
			return err
		}
	}
	for o := range x.seen {
		if _, err := tx.ExecContext(bg, `INSERT OR IGNORE INTO seen VALUES (?)`, o); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	clear(x.names)
	clear(x.seen)
	return nil
}

// open creates the database: an empty file name is, to SQLite, a private
// temporary database, deleted when its connection closes.
func (x *originIndex) open() error {
	db, err := sql.Open("sqlite", "")
	if err != nil {
		return err
	}
	db.SetMaxOpenConns(1)
	conn, err := db.Conn(bg)
	if err == nil {
		_, err = conn.ExecContext(bg, `PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;
			CREATE TABLE names (key TEXT PRIMARY KEY, what TEXT NOT NULL) WITHOUT ROWID;
			CREATE TABLE seen (origin TEXT PRIMARY KEY) WITHOUT ROWID;`)
	}
	if err != nil {
		if conn != nil {
			conn.Close()
		}
		db.Close()
		return err
	}
	x.db, x.conn = db, conn
	return nil
}

// close removes the database, if one was opened.
func (x *originIndex) close() error {
	if x.conn == nil {
		return nil
	}
	err := x.conn.Close()
	if cerr := x.db.Close(); err == nil {
		err = cerr
	}
	x.db, x.conn = nil, nil
	return err
}
