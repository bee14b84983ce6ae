// Package sqlstore is runferry's own schema in a SQL database: PostgreSQL
// (pgx), MySQL or MariaDB (go-sql-driver/mysql) and SQLite
// (modernc.org/sqlite, no cgo). It opens a database from a location,
// creates and migrates the schema (docs/SQL.md), writes one run per
// transaction and reads everything back. The sink and source adapters
// (sinks/sqldb, sources/sqldb) are thin layers over it.
//
// Secrets: a password is read from the environment only (PGPASSWORD for
// PostgreSQL, MYSQL_PWD for MySQL); a password in the location's user info
// is refused by the registry (location.CheckSecrets) and by Open, and no
// error of this package shows the connection string.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/runferry/runferry/internal/fault"
	"github.com/runferry/runferry/internal/location"
)

// Password environment variables of the dialects.
const (
	PostgresPasswordEnv = "PGPASSWORD"
	MySQLPasswordEnv    = "MYSQL_PWD"
)

// Store is an open database holding runferry's schema.
type Store struct {
	DB      *sql.DB
	Dialect Dialect
	where   string // the redacted location, for errors
	// instance names the database among others of its kind: HOST[:PORT]/DB,
	// or a SQLite file's absolute path. Origins of mapped data hold it.
	instance string
	// file is the SQLite file that did not exist when the store was
	// opened for writing: it is created by the first write (Migrate), so
	// that a dry run leaves no empty file behind. "" otherwise.
	file string
	// nameHash is set once the database is known to be a MySQL one at
	// schema version 4 or later (hasNameHash).
	nameHash atomic.Bool
}

// absent reports whether the store's SQLite file is still to be created.
func (s *Store) absent() bool {
	if s.file == "" {
		return false
	}
	_, err := os.Stat(s.file)
	return errors.Is(err, os.ErrNotExist)
}

// Where returns the redacted location the store was opened from.
func (s *Store) Where() string { return s.where }

// Close closes the connection pool.
func (s *Store) Close() error { return s.DB.Close() }

// Mode says what Open expects of the database.
type Mode int

const (
	// ForReading: the database must hold runferry's schema at the version
	// this runferry reads (a source never writes).
	ForReading Mode = iota
	// ForWriting: the database may hold no schema yet, or an older one;
	// Migrate creates or upgrades it before the first write.
	ForWriting
	// ForMapping: the database is the user's own, read through a
	// mapping; runferry's schema is neither needed nor looked for.
	ForMapping
	// ForForeignReading: the database is another program's (MLflow's
	// store), read and never written: runferry's schema is not looked for,
	// and a SQLite file is opened read-only, its journal mode untouched.
	ForForeignReading
)

// Open connects to the database loc names ("postgres://USER@HOST[:PORT]/DB",
// "mysql://USER@HOST[:PORT]/DB", "sqlite:PATH") and proves it reachable.
// A schema newer than this runferry knows is always refused; see Mode for
// the rest. Errors are fatal and never show a password.
func Open(ctx context.Context, loc location.Location, mode Mode) (*Store, error) {
	migrate := mode == ForWriting
	s := &Store{where: loc.String()}
	if loc.URL != nil && loc.URL.Host != "" {
		s.instance = loc.URL.Host + loc.URL.Path
	}
	var err error
	switch loc.Scheme {
	case "postgres", "postgresql":
		s.Dialect = Postgres
		s.DB, err = openPostgres(loc)
	case "mysql":
		s.Dialect = MySQL
		s.DB, err = openMySQL(loc)
	case "sqlite":
		s.Dialect = SQLite
		if mode == ForForeignReading {
			s.DB, err = openSQLiteReadOnly(loc)
		} else {
			s.DB, err = openSQLite(loc, migrate)
		}
		s.instance = loc.Path
		if abs, aerr := filepath.Abs(loc.Path); aerr == nil {
			s.instance = abs
		}
		if _, serr := os.Stat(loc.Path); migrate && errors.Is(serr, os.ErrNotExist) {
			s.file = loc.Path
			if fi, derr := os.Stat(filepath.Dir(loc.Path)); derr != nil || !fi.IsDir() {
				err = fmt.Errorf("cannot create the SQLite database: no folder %s", filepath.Dir(loc.Path))
			}
		}
	default:
		err = fmt.Errorf("unknown SQL scheme %q", loc.Scheme)
	}
	if err != nil {
		return nil, fault.Fatal(err) // the registry names the location
	}
	if s.file != "" {
		return s, nil // connecting would create the file: the first write does
	}
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := s.DB.PingContext(pctx); err != nil {
		s.DB.Close()
		return nil, fault.Fatal(fmt.Errorf("cannot connect: %w%s", withoutRefusedTLS(err), s.passwordHint(err)))
	}
	if mode == ForMapping || mode == ForForeignReading {
		return s, nil
	}
	if err := s.checkVersion(ctx, mode); err != nil {
		s.DB.Close()
		return nil, fault.Fatal(err)
	}
	return s, nil
}

// refusedTLS is what pgx says of the TLS attempt that sslmode=prefer (the
// default) makes first, when the server has no TLS; the plain attempt
// that follows is told on the next line.
const refusedTLS = "tls error: server refused TLS connection"

// withoutRefusedTLS returns err with pgx's line on a refused TLS attempt
// left out of its text (the error itself is kept for errors.As) when
// another attempt is told, so that the reason the connection failed (a
// password, a database that does not exist) is not read as a TLS
// problem. Other errors are returned as they are.
func withoutRefusedTLS(err error) error {
	msg := err.Error()
	if !strings.Contains(msg, refusedTLS) {
		return err
	}
	lines := strings.Split(msg, "\n")
	var kept []string
	for _, l := range lines {
		if !strings.HasSuffix(strings.TrimSpace(l), refusedTLS) {
			kept = append(kept, l)
		}
	}
	if len(kept) == len(lines) || len(kept) < 2 {
		return err
	}
	return retold{msg: strings.Join(kept, "\n"), err: err}
}

// retold is an error told in other words, still unwrapping to itself.
type retold struct {
	msg string
	err error
}

func (r retold) Error() string { return r.msg }
func (r retold) Unwrap() error { return r.err }

// passwordHint returns what to add to a refused login when the password
// variable of the dialect is not set: the server's "password
// authentication failed" does not say that no password was given.
func (s *Store) passwordHint(err error) string {
	var pgErr *pgconn.PgError
	var myErr *mysql.MySQLError
	switch {
	case errors.As(err, &pgErr) && (pgErr.Code == "28P01" || pgErr.Code == "28000") && os.Getenv(PostgresPasswordEnv) == "":
		return " (" + PostgresPasswordEnv + " is not set: runferry reads the password from it, or from ~/.pgpass, never from the location)"
	case errors.As(err, &myErr) && myErr.Number == 1045 && os.Getenv(MySQLPasswordEnv) == "":
		return " (" + MySQLPasswordEnv + " is not set: runferry reads the password only from it, never from the location)"
	}
	return ""
}

// permissionDenied reports whether err is the server refusing a statement
// for want of a privilege (PostgreSQL's SQLSTATE 42501; MySQL's 1142
// table access denied, 1044 database access denied).
func permissionDenied(err error) bool {
	var pgErr *pgconn.PgError
	var myErr *mysql.MySQLError
	switch {
	case errors.As(err, &pgErr):
		return pgErr.Code == "42501"
	case errors.As(err, &myErr):
		return myErr.Number == 1142 || myErr.Number == 1044
	}
	return false
}

// refusePassword refuses a password in the URL's user info.
func refusePassword(u *url.URL, env string) error {
	if u.User == nil {
		return nil
	}
	if _, ok := u.User.Password(); ok {
		return fmt.Errorf("a password in the location is refused: secrets are read only from the environment: set %s (the user may stay in the location)", env)
	}
	return nil
}

// runferryOptions are the location options runferry reads itself; they
// are not passed to the driver.
var runferryOptions = map[string]bool{"mapping": true,
	// the MLflow store readers' (sources/mlflowsql)
	"instance": true, "deleted": true, "experiment-prefix": true, "artifacts": true}

// driverQuery returns the location's query without runferry's own options.
func driverQuery(u *url.URL) url.Values {
	q := url.Values{}
	for k, v := range u.Query() {
		if !runferryOptions[k] {
			q[k] = v
		}
	}
	return q
}

func openPostgres(loc location.Location) (*sql.DB, error) {
	u := *loc.URL
	if err := refusePassword(&u, PostgresPasswordEnv); err != nil {
		return nil, err
	}
	if strings.Trim(u.Path, "/") == "" && os.Getenv("PGDATABASE") == "" {
		// libpq would take the database named as the user, which the
		// location does not say.
		return nil, errors.New("name the database: postgres://USER@HOST[:PORT]/DATABASE")
	}
	u.Scheme = "postgres"
	u.RawQuery = driverQuery(&u).Encode()
	cfg, err := pgx.ParseConfig(u.String())
	if err != nil {
		return nil, fmt.Errorf("bad PostgreSQL location: %s", location.Redact(err.Error()))
	}
	if pw := os.Getenv(PostgresPasswordEnv); pw != "" {
		cfg.Password = pw
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(16)
	db.SetMaxIdleConns(8)
	return db, nil
}

func openMySQL(loc location.Location) (*sql.DB, error) {
	u := loc.URL
	if err := refusePassword(u, MySQLPasswordEnv); err != nil {
		return nil, err
	}
	cfg := mysql.NewConfig()
	if u.User != nil {
		cfg.User = u.User.Username()
	}
	cfg.Passwd = os.Getenv(MySQLPasswordEnv)
	cfg.Net = "tcp"
	host := u.Host
	if _, _, err := net.SplitHostPort(host); err != nil {
		host = net.JoinHostPort(strings.Trim(host, "[]"), "3306")
	}
	cfg.Addr = host
	cfg.DBName = strings.TrimPrefix(u.Path, "/")
	if cfg.DBName == "" || strings.Contains(cfg.DBName, "/") {
		return nil, errors.New("name the database: mysql://USER@HOST[:PORT]/DATABASE")
	}
	cfg.InterpolateParams = true
	cfg.MultiStatements = false
	cfg.ParseTime = false
	cfg.Params = map[string]string{}
	for k, v := range driverQuery(u) {
		switch k {
		case "tls":
			cfg.TLSConfig = v[0]
		default:
			return nil, fmt.Errorf("unknown MySQL option %q", k)
		}
	}
	cfg.Collation = "utf8mb4_bin"
	// Strict mode on every connection, whatever the server's sql_mode: a
	// server without it (sql_mode '', common in older set-ups) cuts a
	// string longer than its column (before schema version 4, a metric
	// key, param or tag name over VARCHAR(700)) with a warning only, so two
	// keys alike in their first 700 characters became one with the write
	// reported whole. Strict, such a write fails and the run is named as
	// failed. The server's other modes are kept.
	cfg.Params["sql_mode"] = "CONCAT_WS(',', NULLIF(@@SESSION.sql_mode, ''), 'STRICT_ALL_TABLES')"
	cfg.MaxAllowedPacket = 0 // ask the server
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("bad MySQL location: %s", location.RedactValues(err.Error(), cfg.Passwd))
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(16)
	db.SetMaxIdleConns(8)
	return db, nil
}

func openSQLite(loc location.Location, create bool) (*sql.DB, error) {
	if !create {
		if _, err := os.Stat(loc.Path); err != nil {
			return nil, fmt.Errorf("no SQLite database: %w", err)
		}
	}
	dsn := "file:" + (&url.URL{Path: loc.Path}).EscapedPath() +
		"?_pragma=busy_timeout(60000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(8)
	return db, nil
}

// openSQLiteReadOnly opens an existing SQLite file read-only (SQLite's
// mode=ro): nothing is written to it, not even a change of journal mode.
func openSQLiteReadOnly(loc location.Location) (*sql.DB, error) {
	if _, err := os.Stat(loc.Path); err != nil {
		return nil, fmt.Errorf("no SQLite database: %w", err)
	}
	dsn := "file:" + (&url.URL{Path: loc.Path}).EscapedPath() + "?mode=ro&_pragma=busy_timeout(60000)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(8)
	return db, nil
}
