package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"
)

// Latest returns the schema version this runferry writes and reads: that
// of its last migration.
func Latest() int { return migrations[len(migrations)-1].version }

// migration upgrades the schema from version-1 to version.
type migration struct {
	version int
	stmts   []string
	// read: the source reads what the migration adds, so a database
	// without it must be upgraded (by a write) before it is read. A
	// migration only writers use (run_marks) leaves older databases
	// readable.
	read bool
	// dialect, when set, is the only dialect whose database the
	// statements change; on the others the version is recorded alone.
	dialect string
}

// readable reports whether a database at version v can be read: no
// migration after v adds what the source reads.
func readable(v int) bool {
	for _, m := range migrations {
		if m.version > v && m.read {
			return false
		}
	}
	return v >= 1
}

// migrations, in order. A new version appends one; an existing one never
// changes, since databases out there hold it. On MySQL, which commits DDL
// statement by statement, a migration's statements must be repeatable.
var migrations = []migration{{version: 1, stmts: schemaV1, read: true}, {version: 2, stmts: schemaV2}, {version: 3, stmts: schemaV3},
	{version: 4, stmts: schemaV4MySQL, dialect: "mysql"}}

// schemaV4MySQL makes names exact and unbounded on MySQL and MariaDB, as
// they are on PostgreSQL and SQLite (TEXT, compared bytewise):
//
//   - utf8mb4_bin, the collation of versions 1 to 3, is PAD SPACE: "loss"
//     and "loss " compared equal, so a run holding both failed on its
//     unique key. Origins and names take a NO PAD binary collation
//     ({NOPAD}: utf8mb4_nopad_bin on MariaDB, utf8mb4_0900_bin on MySQL 8;
//     utf8mb4_bin where the server has neither, see nopadCollation).
//   - Names were VARCHAR(700) (InnoDB keys hold at most 3072 bytes), so a
//     longer metric key, param, tag, label or file path failed its run.
//     They are LONGTEXT, and their unique keys are on a hash of the
//     whole name: name_hash (label_hash, path_hash), SHA-256 of the
//     name's bytes, a stored generated column, so writers and readers do
//     not change. A table whose primary key held the name gets row_id,
//     an AUTO_INCREMENT primary key, since servers may require one
//     (sql_require_primary_key, innodb_force_primary_key).
//     metrics.name_hash is the first 8 bytes of that SHA-256, written by
//     runferry (MariaDB keeps a generated column out of a primary key):
//     the primary key (run_id, name_hash, step, seq) clusters a key's
//     points together in step order; seq, unique in a run, keeps two
//     keys of one hash apart.
//   - Origins (of experiments and runs) were VARCHAR(700) too. They are
//     LONGTEXT, unique by origin_hash (a stored generated SHA-256), and
//     looked up by "origin = ?" as before, through a key on their first
//     700 characters.
//
// Each statement is repeatable (MySQL commits DDL statement by
// statement): an ADD COLUMN the table has, or a DROP of a key already
// dropped by the same statement before, is taken as done (a statement
// is applied whole or not at all: the second run of the one adding
// row_id fails on that column, having changed nothing).
var schemaV4MySQL = []string{
	`ALTER TABLE experiments ADD COLUMN origin_hash BINARY(32) AS (UNHEX(SHA2(origin, 256))) STORED`,
	`ALTER TABLE experiments DROP INDEX origin, MODIFY origin LONGTEXT CHARACTER SET utf8mb4 COLLATE {NOPAD} NOT NULL,
		ADD UNIQUE KEY experiments_origin (origin_hash), ADD KEY experiments_origin_prefix (origin(700))`,
	`ALTER TABLE runs ADD COLUMN origin_hash BINARY(32) AS (UNHEX(SHA2(origin, 256))) STORED`,
	`ALTER TABLE runs DROP INDEX origin, MODIFY origin LONGTEXT CHARACTER SET utf8mb4 COLLATE {NOPAD} NOT NULL,
		ADD UNIQUE KEY runs_origin (origin_hash), ADD KEY runs_origin_prefix (origin(700))`,
	`ALTER TABLE experiment_tags ADD COLUMN name_hash BINARY(32) AS (UNHEX(SHA2(name, 256))) STORED`,
	`ALTER TABLE experiment_tags DROP PRIMARY KEY, ADD COLUMN row_id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
		MODIFY name LONGTEXT CHARACTER SET utf8mb4 COLLATE {NOPAD} NOT NULL, ADD UNIQUE KEY experiment_tags_name (experiment_id, name_hash)`,
	`ALTER TABLE params ADD COLUMN name_hash BINARY(32) AS (UNHEX(SHA2(name, 256))) STORED`,
	`ALTER TABLE params DROP PRIMARY KEY, ADD COLUMN row_id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
		MODIFY name LONGTEXT CHARACTER SET utf8mb4 COLLATE {NOPAD} NOT NULL, ADD UNIQUE KEY params_name (run_id, name_hash)`,
	`ALTER TABLE tags ADD COLUMN name_hash BINARY(32) AS (UNHEX(SHA2(name, 256))) STORED`,
	`ALTER TABLE tags DROP PRIMARY KEY, ADD COLUMN row_id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
		MODIFY name LONGTEXT CHARACTER SET utf8mb4 COLLATE {NOPAD} NOT NULL, ADD UNIQUE KEY tags_name (run_id, name_hash)`,
	`ALTER TABLE labels ADD COLUMN label_hash BINARY(32) AS (UNHEX(SHA2(label, 256))) STORED`,
	`ALTER TABLE labels DROP PRIMARY KEY, ADD COLUMN row_id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
		MODIFY label LONGTEXT CHARACTER SET utf8mb4 COLLATE {NOPAD} NOT NULL, ADD UNIQUE KEY labels_label (run_id, label_hash)`,
	`ALTER TABLE files ADD COLUMN path_hash BINARY(32) AS (UNHEX(SHA2(path, 256))) STORED`,
	`ALTER TABLE files DROP INDEX run_id, MODIFY path LONGTEXT CHARACTER SET utf8mb4 COLLATE {NOPAD} NOT NULL,
		ADD UNIQUE KEY files_path (run_id, path_hash)`,
	`ALTER TABLE metrics ADD COLUMN name_hash BINARY(8) NOT NULL DEFAULT 0x0000000000000000`,
	`UPDATE metrics SET name_hash = UNHEX(LEFT(SHA2(name, 256), 16))`,
	`ALTER TABLE metrics DROP PRIMARY KEY, MODIFY name LONGTEXT CHARACTER SET utf8mb4 COLLATE {NOPAD} NOT NULL,
		ADD PRIMARY KEY (run_id, name_hash, step, seq)`,
}

// schemaV3 adds logs.line_bytes, params.value_bytes and tags.value_bytes:
// the exact bytes of a console line or a param or tag value that the
// database's text type cannot hold (PostgreSQL's holds no NUL byte,
// neither PostgreSQL's nor MySQL's utf8mb4 bytes that are not UTF-8),
// beside a readable form of it in the text column (ReadableText). NULL
// for every other row, and for every row on SQLite, whose text holds any
// bytes. A database at version 2 holds no such row, so it is read as it
// is.
var schemaV3 = []string{
	`ALTER TABLE logs ADD COLUMN line_bytes {BLOB}`,
	`ALTER TABLE params ADD COLUMN value_bytes {BLOB}`,
	`ALTER TABLE tags ADD COLUMN value_bytes {BLOB}`,
}

// schemaV2 adds run_marks: the mark and cursors document the engine gave
// a run's last commit, so that a later sync can append to the run
// (sinks.Appender) instead of writing it again.
var schemaV2 = []string{
	`CREATE TABLE run_marks (
		run_id BIGINT NOT NULL PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,
		mark {TEXT} NOT NULL,
		cursors {TEXT}
	){TABLE}`,
}

// schemaV1 is the first schema (docs/SQL.md). Times are Unix milliseconds
// (NULL when unknown); flags are 0/1.
var schemaV1 = []string{
	`CREATE TABLE experiments (
		id {ID},
		origin {KEY} NOT NULL UNIQUE,
		name {TEXT} NOT NULL,
		description {TEXT} NOT NULL,
		created_ms {BIGINT},
		deleted SMALLINT NOT NULL
	){TABLE}`,
	`CREATE TABLE experiment_tags (
		experiment_id BIGINT NOT NULL REFERENCES experiments(id) ON DELETE CASCADE,
		name {KEY} NOT NULL,
		value {TEXT} NOT NULL,
		PRIMARY KEY (experiment_id, name)
	){TABLE}`,
	`CREATE TABLE runs (
		id {ID},
		origin {KEY} NOT NULL UNIQUE,
		experiment_id BIGINT NOT NULL REFERENCES experiments(id),
		name {TEXT} NOT NULL,
		user_name {TEXT} NOT NULL,
		status VARCHAR(16) NOT NULL,
		start_ms {BIGINT},
		end_ms {BIGINT},
		notes {TEXT} NOT NULL,
		parent_origin {TEXT},
		group_name {TEXT} NOT NULL,
		job_type {TEXT} NOT NULL,
		host {TEXT} NOT NULL,
		program {TEXT} NOT NULL,
		git_commit {TEXT} NOT NULL,
		git_remote {TEXT} NOT NULL,
		config {TEXT},
		summary {TEXT},
		inputs {TEXT},
		damage {TEXT},
		deleted SMALLINT NOT NULL,
		points {BIGINT} NOT NULL,
		fingerprint {TEXT} NOT NULL,
		written_ms {BIGINT} NOT NULL
	){TABLE}`,
	`CREATE INDEX runs_experiment ON runs (experiment_id)`,
	`CREATE TABLE params (
		run_id BIGINT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
		name {KEY} NOT NULL,
		value {TEXT} NOT NULL,
		PRIMARY KEY (run_id, name)
	){TABLE}`,
	`CREATE TABLE tags (
		run_id BIGINT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
		name {KEY} NOT NULL,
		value {TEXT} NOT NULL,
		PRIMARY KEY (run_id, name)
	){TABLE}`,
	`CREATE TABLE labels (
		run_id BIGINT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
		label {KEY} NOT NULL,
		PRIMARY KEY (run_id, label)
	){TABLE}`,
	`CREATE TABLE metrics (
		run_id BIGINT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
		name {KEY} NOT NULL,
		step BIGINT NOT NULL,
		seq BIGINT NOT NULL,
		time_ms BIGINT NOT NULL,
		value {DOUBLE},
		special VARCHAR(9),
		PRIMARY KEY (run_id, name, step, seq)
	){TABLE}`,
	`CREATE TABLE rich_values (
		run_id BIGINT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
		seq BIGINT NOT NULL,
		name {TEXT} NOT NULL,
		step BIGINT NOT NULL,
		time_ms BIGINT NOT NULL,
		value_type {TEXT} NOT NULL,
		value_json {TEXT} NOT NULL,
		files {TEXT},
		PRIMARY KEY (run_id, seq)
	){TABLE}`,
	`CREATE TABLE logs (
		run_id BIGINT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
		seq BIGINT NOT NULL,
		time_ms BIGINT NOT NULL,
		stream VARCHAR(8) NOT NULL,
		line {TEXT} NOT NULL,
		PRIMARY KEY (run_id, seq)
	){TABLE}`,
	`CREATE TABLE files (
		id {ID},
		run_id BIGINT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
		path {KEY} NOT NULL,
		size_bytes {BIGINT},
		sha256 VARCHAR(64),
		problem {TEXT},
		UNIQUE (run_id, path)
	){TABLE}`,
	`CREATE TABLE file_chunks (
		file_id BIGINT NOT NULL REFERENCES files(id) ON DELETE CASCADE,
		seq BIGINT NOT NULL,
		content {BLOB} NOT NULL,
		PRIMARY KEY (file_id, seq)
	){TABLE}`,
}

// ErrNewerSchema says the database holds a schema version this runferry
// does not know.
var ErrNewerSchema = errors.New("schema is newer than this runferry knows")

// version returns the schema version the database holds; 0 when it holds
// no runferry schema.
func (s *Store) version(ctx context.Context, q querier) (int, bool, error) {
	if s.absent() {
		return 0, false, errors.New("no SQLite database file yet")
	}
	var v sql.NullInt64
	err := q.QueryRowContext(ctx, "SELECT MAX(version) FROM runferry_schema").Scan(&v)
	if err != nil {
		return 0, false, err
	}
	return int(v.Int64), true, nil
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// checkVersion refuses a schema newer than Latest, and, for reading, a
// database without runferry's schema at version Latest.
func (s *Store) checkVersion(ctx context.Context, mode Mode) error {
	v, _, err := s.version(ctx, s.DB)
	switch {
	case err != nil && permissionDenied(err):
		return fmt.Errorf("the user may not read runferry's tables here (table runferry_schema: %v): grant it SELECT on them (PostgreSQL: GRANT SELECT ON ALL TABLES IN SCHEMA public TO USER; MySQL: GRANT SELECT ON DATABASE.* TO USER), and for writing also INSERT, UPDATE, DELETE (and CREATE while the schema is created or upgraded)", err)
	case err != nil && mode == ForReading:
		return fmt.Errorf("no runferry schema here (table runferry_schema: %v): write to it with runferry first, or read a database of your own design through a mapping file (?mapping=FILE, docs/SQL-MAPPING.md)", err)
	case err != nil:
		return nil // no schema yet: Migrate creates it
	case v > Latest():
		return fmt.Errorf("%w: the database holds schema version %d, this runferry knows up to %d: upgrade runferry", ErrNewerSchema, v, Latest())
	case v < Latest() && mode == ForReading && !readable(v):
		return fmt.Errorf("the database holds runferry schema version %d, this runferry reads version %d: write to it once with this runferry to upgrade it", v, Latest())
	}
	return nil
}

// Migrate creates or upgrades the schema to Latest, each version in one
// transaction where the database has transactional DDL (PostgreSQL,
// SQLite); MySQL commits each statement, so a migration cut short there
// is finished by the next open (CREATE TABLE statements are made
// repeatable; later migrations must be written so on MySQL). Two
// processes migrating at once wait for each other (an advisory lock).
func (s *Store) Migrate(ctx context.Context) error {
	if v, _, err := s.version(ctx, s.DB); err == nil && v == Latest() {
		return nil
	}
	conn, err := s.DB.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	unlock, err := s.lockSchema(ctx, conn)
	if err != nil {
		return fmt.Errorf("locking the schema for migration: %w", err)
	}
	defer unlock()
	if v0, _, err := s.version(ctx, conn); err != nil || (v0 == 0 && s.Dialect.Name != "mysql") {
		// No runferry_schema, or (where DDL is transactional, so that
		// no migration of runferry's leaves tables without their
		// version row) an empty one: a database runferry never wrote.
		// Tables of runferry's names in it are someone else's, which
		// runferry must neither write into nor create its own beside
		// (MySQL's CREATE TABLE IF NOT EXISTS would keep a foreign
		// table silently). An empty runferry_schema on MySQL is a
		// migration cut short, finished below.
		if err := s.refuseForeignTables(ctx, conn); err != nil {
			return err
		}
	}
	if _, err := conn.ExecContext(ctx, s.Dialect.ddl(`CREATE TABLE IF NOT EXISTS runferry_schema (
		version INTEGER NOT NULL PRIMARY KEY, applied_ms {BIGINT} NOT NULL, note {TEXT} NOT NULL){TABLE}`)); err != nil {
		return fmt.Errorf("creating runferry_schema: %w%s", err, createHint(err))
	}
	v, _, err := s.version(ctx, conn)
	if err != nil {
		return err
	}
	if v > Latest() {
		return fmt.Errorf("%w: the database holds schema version %d, this runferry knows up to %d: upgrade runferry", ErrNewerSchema, v, Latest())
	}
	for _, m := range migrations {
		if m.version <= v {
			continue
		}
		if err := s.apply(ctx, conn, m); err != nil {
			return fmt.Errorf("%s: migrating the schema to version %d: %w%s", s.where, m.version, err, createHint(err))
		}
	}
	return nil
}

// createHint returns what to add to an error creating runferry's tables
// when the server refused it for want of a privilege, or found no schema
// to create them in (PostgreSQL, a ?search_path= naming none that exists).
func createHint(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "3F000" {
		return ": no schema of the search_path exists: create the one ?search_path= names first (CREATE SCHEMA NAME)"
	}
	if !permissionDenied(err) {
		return ""
	}
	return ": the user may not create tables here: grant it CREATE (PostgreSQL: GRANT CREATE ON SCHEMA public TO USER, or name a schema it owns with ?search_path=NAME; MySQL: GRANT CREATE, REFERENCES, INDEX ON DATABASE.* TO USER), or let the database's owner write to it once with runferry to create the schema"
}

// schemaTables lists the tables of every migration, in order.
func schemaTables() []string {
	var names []string
	for _, m := range migrations {
		for _, stmt := range m.stmts {
			if rest, ok := strings.CutPrefix(stmt, "CREATE TABLE "); ok {
				names = append(names, strings.Fields(rest)[0])
			}
		}
	}
	return names
}

// refuseForeignTables returns an error naming the tables of runferry's
// schema that the database (PostgreSQL: the current schema of the
// search_path) already holds, when runferry_schema is absent: they were
// not created by runferry, so the schema cannot be created there without
// writing into them or failing half way. nil when there are none.
func (s *Store) refuseForeignTables(ctx context.Context, conn *sql.Conn) error {
	names := schemaTables()
	var query string
	switch s.Dialect.Name {
	case "postgres":
		query = "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_name IN (" + strings.TrimSuffix(strings.Repeat("?,", len(names)), ",") + ")"
	case "mysql":
		query = "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name IN (" + strings.TrimSuffix(strings.Repeat("?,", len(names)), ",") + ")"
	default:
		query = "SELECT lower(name) FROM sqlite_master WHERE type IN ('table', 'view') AND lower(name) IN (" + strings.TrimSuffix(strings.Repeat("?,", len(names)), ",") + ")"
	}
	args := make([]any, len(names))
	for i, n := range names {
		args[i] = n
	}
	rows, err := conn.QueryContext(ctx, s.Dialect.q(query), args...)
	if err != nil {
		return fmt.Errorf("%s: looking for tables of runferry's names before creating its schema: %w", s.where, err)
	}
	defer rows.Close()
	found := map[string]bool{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return err
		}
		found[strings.ToLower(n)] = true
	}
	if err := rows.Err(); err != nil {
		return err
	}
	var clash []string
	for _, n := range names {
		if found[n] {
			clash = append(clash, n)
		}
	}
	if len(clash) == 0 {
		return nil
	}
	where := "another database"
	if s.Dialect.Name == "postgres" {
		where = "another database, or another PostgreSQL schema with ?search_path=NAME (created beforehand)"
	} else if s.Dialect.Name == "sqlite" {
		where = "another SQLite file"
	}
	return fmt.Errorf("%s already holds tables named as runferry's own (%s) but no runferry_schema: they are not runferry's, and runferry neither writes into them nor creates its schema beside them; name %s for runferry's tables (docs/SQL.md), or read these tables through a mapping file (?mapping=FILE, docs/SQL-MAPPING.md)",
		s.where, strings.Join(clash, ", "), where)
}

func (s *Store) apply(ctx context.Context, conn *sql.Conn, m migration) error {
	transactional := s.Dialect.Name != "mysql"
	if transactional {
		if err := s.Dialect.beginTx(ctx, conn); err != nil {
			return err
		}
	}
	stmts := m.stmts
	if m.dialect != "" && m.dialect != s.Dialect.Name {
		stmts = nil
	}
	if len(stmts) > 0 && s.Dialect.Name == "mysql" {
		c, err := nopadCollation(ctx, conn)
		if err != nil {
			return err
		}
		s.Dialect.nopad = c
	}
	for _, stmt := range stmts {
		stmt = s.Dialect.ddl(stmt)
		if !transactional {
			if strings.HasPrefix(stmt, "CREATE INDEX ") {
				// Every index of the schema is on a foreign key, which
				// InnoDB indexes by itself (and MySQL has no CREATE INDEX
				// IF NOT EXISTS).
				continue
			}
			stmt = ifNotExists(stmt)
		}
		if _, err := conn.ExecContext(ctx, stmt); err != nil {
			if !transactional && strings.HasPrefix(stmt, "ALTER TABLE ") && alreadyDone(err) {
				continue // done by a migration cut short
			}
			if transactional {
				rollback(conn)
			}
			return err
		}
	}
	_, err := conn.ExecContext(ctx, s.Dialect.q("INSERT INTO runferry_schema (version, applied_ms, note) VALUES (?, ?, ?)"),
		m.version, time.Now().UnixMilli(), "runferry")
	if err != nil {
		if transactional {
			rollback(conn)
		}
		return err
	}
	if transactional {
		_, err = conn.ExecContext(ctx, "COMMIT")
	}
	return err
}

// ifNotExists makes a MySQL CREATE TABLE statement repeatable, so that a
// migration cut short is finished by the next one.
func ifNotExists(stmt string) string {
	if rest, ok := strings.CutPrefix(stmt, "CREATE TABLE "); ok {
		return "CREATE TABLE IF NOT EXISTS " + rest
	}
	return stmt
}

// lockSchema takes a lock that serialises migrations between processes.
func (s *Store) lockSchema(ctx context.Context, conn *sql.Conn) (func(), error) {
	switch s.Dialect.Name {
	case "postgres":
		if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock(7261736)"); err != nil {
			return nil, err
		}
		return func() { conn.ExecContext(context.Background(), "SELECT pg_advisory_unlock(7261736)") }, nil
	case "mysql":
		var got sql.NullInt64
		if err := conn.QueryRowContext(ctx, "SELECT GET_LOCK('runferry_schema', 120)").Scan(&got); err != nil {
			return nil, err
		}
		if got.Int64 != 1 {
			return nil, errors.New("another process holds the lock runferry_schema")
		}
		return func() { conn.ExecContext(context.Background(), "SELECT RELEASE_LOCK('runferry_schema')") }, nil
	}
	return func() {}, nil // SQLite: BEGIN IMMEDIATE serialises writers
}

// rollback ends a failed transaction; a connection it fails on is
// discarded, never returned to the pool, which ends the transaction on
// the server.
func rollback(conn *sql.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
		conn.Raw(func(any) error { return driver.ErrBadConn })
	}
}

// HasSchema reports whether the database holds runferry's schema at a
// version whose runs can be read (see readable): Latest, or an older one
// a write will upgrade.
func (s *Store) HasSchema(ctx context.Context) (bool, error) {
	v, _, err := s.version(ctx, s.DB)
	if err != nil {
		return false, nil // no runferry_schema table
	}
	return v <= Latest() && readable(v), nil
}

// alreadyDone reports whether err is MySQL's refusal to add a column the
// table already has (error 1060), or to drop a key it does not have
// (1091), which makes an ALTER TABLE of a migration repeatable there: a
// statement is applied whole or not at all, so the key is missing because
// the same statement dropped it before.
func alreadyDone(err error) bool {
	var myErr *mysql.MySQLError
	return errors.As(err, &myErr) && (myErr.Number == 1060 || myErr.Number == 1091)
}

// nopadCollation returns the binary NO PAD collation of utf8mb4 that the
// server has (MariaDB 10.2 on: utf8mb4_nopad_bin; MySQL 8:
// utf8mb4_0900_bin), or utf8mb4_bin, PAD SPACE, on a server with
// neither (MySQL 5.7). There the unique keys, on the SHA-256 of the whole
// name (origin_hash, name_hash), still keep names differing only by
// trailing spaces apart; only comparisons with = (a lookup or delete by
// origin) take them for one name.
func nopadCollation(ctx context.Context, conn *sql.Conn) (string, error) {
	for _, c := range []string{"utf8mb4_nopad_bin", "utf8mb4_0900_bin"} {
		var n int
		err := conn.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.COLLATIONS WHERE COLLATION_NAME = ?", c).Scan(&n)
		if err != nil {
			return "", fmt.Errorf("looking up collation %s: %w", c, err)
		}
		if n > 0 {
			return c, nil
		}
	}
	return "utf8mb4_bin", nil
}

// hasBytes reports whether the database has logs.line_bytes,
// params.value_bytes and tags.value_bytes (version 3 on).
func (s *Store) hasBytes(ctx context.Context) (bool, error) {
	v, _, err := s.version(ctx, s.DB)
	return v >= 3, err
}

// hasNameHash reports whether the database is a MySQL one with
// metrics.name_hash (version 4 on), its primary key's order.
// A yes is remembered on the Store (a schema version never goes down),
// so that once the database is known to be at version 4 no Metrics read
// or RunTx asks it again; a no is asked again, as Migrate may upgrade it.
func (s *Store) hasNameHash(ctx context.Context) (bool, error) {
	if s.Dialect.Name != "mysql" {
		return false, nil
	}
	if s.nameHash.Load() {
		return true, nil
	}
	v, _, err := s.version(ctx, s.DB)
	if err == nil && v >= 4 {
		s.nameHash.Store(true)
	}
	return v >= 4, err
}

// hasMarks reports whether the database has run_marks (version 2 on).
func (s *Store) hasMarks(ctx context.Context) bool {
	v, _, err := s.version(ctx, s.DB)
	return err == nil && v >= 2
}
