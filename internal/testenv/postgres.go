package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
)

// Postgres is a throwaway PostgreSQL cluster listening on 127.0.0.1 with
// trust auth. Dir holds data/, the socket and postgres.log.
type Postgres struct {
	dbServer
	// DSN connects as the superuser "postgres" to the "postgres" database:
	// postgres://postgres@127.0.0.1:PORT/postgres?sslmode=disable
	DSN string

	bin string
}

// pgBinDirs are searched after PATH for initdb and friends.
var pgBinDirs = func() []string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	for i, j := 0, len(dirs)-1; i < j; i, j = i+1, j-1 { // newest version first
		dirs[i], dirs[j] = dirs[j], dirs[i]
	}
	return append(dirs, "/usr/local/pgsql/bin")
}()

// postgresBinDir returns the directory holding initdb and postgres.
func postgresBinDir() (string, error) {
	initdb, ok := lookPath("initdb", pgBinDirs...)
	if !ok {
		return "", fmt.Errorf("initdb not found on PATH or in /usr/lib/postgresql/*/bin (apt-get install postgresql)")
	}
	if real, err := filepath.EvalSymlinks(initdb); err == nil {
		initdb = real
	}
	dir := filepath.Dir(initdb)
	for _, tool := range []string{"postgres"} {
		if !isExecutable(filepath.Join(dir, tool)) {
			return "", fmt.Errorf("%s not found next to %s", tool, initdb)
		}
	}
	return dir, nil
}

// StartPostgres starts a new cluster (initdb, then postgres on a free port) and stops it
// and deletes its files when t ends. Missing PostgreSQL binaries skip the test (fail it under
// CI). As root, the server runs as the user "postgres" (or "nobody"), since initdb refuses root.
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	pg, err := startPostgres()
	if err != nil {
		if pg == nil && isMissingBinaries(err) {
			Unavailable(t, "PostgreSQL", err.Error())
		}
		t.Fatalf("testenv: start PostgreSQL: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("testenv: PostgreSQL log tail (%s):\n%s", pg.LogPath, tailFile(pg.LogPath, 30))
		}
		pg.Stop()
	})
	return pg
}

func startPostgres() (*Postgres, error) {
	bin, err := postgresBinDir()
	if err != nil {
		return nil, missingBinaries{err}
	}
	pg := &Postgres{bin: bin}
	// SIGQUIT is PostgreSQL's immediate shutdown: backends die and shared memory is freed.
	if err := pg.init("runferry-pg-", "postgres.log", syscall.SIGQUIT, "postgres", "nobody"); err != nil {
		pg.Stop()
		return nil, err
	}
	if err := pg.start(); err != nil {
		pg.Stop()
		return nil, err
	}
	return pg, nil
}

// unprivilegedCredential returns nil when not root, else the credential of "postgres" or
// "nobody".
func unprivilegedCredential() (*syscall.Credential, error) {
	return credentialOf("postgres", "nobody")
}

func (pg *Postgres) command(name string, args ...string) *exec.Cmd {
	return pg.dbServer.command(filepath.Join(pg.bin, name), append(os.Environ(), "LC_ALL=C", "PGTZ=UTC"), args...)
}

func (pg *Postgres) start() error {
	data := filepath.Join(pg.Dir, "data")
	if err := runLogged(pg.command("initdb", "-D", data, "-U", "postgres", "-A", "trust",
		"-E", "UTF8", "--locale=C", "--no-sync")); err != nil {
		return err
	}
	err := pg.serve(dbEngine{
		name: "postgres",
		onExit: func(pgid int, dir string) string {
			return fmt.Sprintf("kill -QUIT -%d; sleep 2; kill -KILL -%d; rm -rf %q", pgid, pgid, dir)
		},
		// The postmaster runs as a service of this binary (not daemonized by pg_ctl), so it
		// has a process group and a parent-death signal like every other test server.
		server: func(port int) *exec.Cmd {
			return pg.command("postgres", "-D", data, "-k", pg.Dir, "-p", strconv.Itoa(port),
				"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
				"-c", "full_page_writes=off", "-c", "max_connections=200")
		},
		// pg_isready when installed, else a TCP connect.
		probe: func() error {
			if isExecutable(filepath.Join(pg.bin, "pg_isready")) {
				return runLogged(pg.command("pg_isready", "-h", "127.0.0.1", "-p", strconv.Itoa(pg.Port), "-U", "postgres"))
			}
			return pg.dial()
		},
	})
	if err != nil {
		return err
	}
	pg.DSN = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", pg.Port)
	return nil
}

// CreateDatabase creates a database and returns a DSN for it.
func (pg *Postgres) CreateDatabase(t testing.TB, name string) string {
	t.Helper()
	cmd := pg.command("psql", "-h", "127.0.0.1", "-p", strconv.Itoa(pg.Port), "-U", "postgres",
		"-v", "ON_ERROR_STOP=1", "-c", fmt.Sprintf(`CREATE DATABASE %q`, name))
	if !isExecutable(cmd.Path) {
		cmd = pg.command("createdb", "-h", "127.0.0.1", "-p", strconv.Itoa(pg.Port), "-U", "postgres", name)
	}
	if err := runLogged(cmd); err != nil {
		t.Fatalf("testenv: create database %s: %v", name, err)
	}
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", pg.Port, name)
}
