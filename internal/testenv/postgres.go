package testenv

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Postgres is a throwaway PostgreSQL cluster listening on 127.0.0.1 with trust auth.
type Postgres struct {
	// DSN connects as the superuser "postgres" to the "postgres" database:
	// postgres://postgres@127.0.0.1:PORT/postgres?sslmode=disable
	DSN     string
	Port    int
	Dir     string // holds data/, the socket and postgres.log; removed on stop
	LogPath string

	bin      string
	cred     *syscall.Credential
	svc      *service // the postmaster's process group
	stopOnce sync.Once
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

type missingBinaries struct{ error }

func isMissingBinaries(err error) bool { _, ok := err.(missingBinaries); return ok }

func startPostgres() (*Postgres, error) {
	bin, err := postgresBinDir()
	if err != nil {
		return nil, missingBinaries{err}
	}
	cred, err := unprivilegedCredential()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "runferry-pg-")
	if err != nil {
		return nil, err
	}
	pg := &Postgres{Dir: dir, LogPath: filepath.Join(dir, "postgres.log"), bin: bin, cred: cred}
	if err := pg.start(); err != nil {
		pg.Stop()
		return nil, err
	}
	return pg, nil
}

// unprivilegedCredential returns nil when not root, else the credential of "postgres" or
// "nobody".
func unprivilegedCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
	}
	return nil, fmt.Errorf("running as root and neither user postgres nor nobody exists")
}

func (pg *Postgres) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(pg.bin, name), args...)
	cmd.Dir = pg.Dir
	cmd.Env = append(os.Environ(), "LC_ALL=C", "PGTZ=UTC")
	if pg.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: pg.cred}
	}
	return cmd
}

func (pg *Postgres) start() error {
	if pg.cred != nil {
		if err := os.Chown(pg.Dir, int(pg.cred.Uid), int(pg.cred.Gid)); err != nil {
			return err
		}
	}
	data := filepath.Join(pg.Dir, "data")
	if err := runLogged(pg.command("initdb", "-D", data, "-U", "postgres", "-A", "trust",
		"-E", "UTF8", "--locale=C", "--no-sync")); err != nil {
		return err
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ { // the free port may be taken meanwhile
		port, err := freePort()
		if err != nil {
			return err
		}
		// The postmaster runs as a service of this binary (not daemonized by pg_ctl), so it
		// has a process group and a parent-death signal like every other test server.
		// SIGQUIT is PostgreSQL's immediate shutdown: backends die and shared memory is freed.
		cmd := pg.command("postgres", "-D", data, "-k", pg.Dir, "-p", strconv.Itoa(port),
			"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
			"-c", "full_page_writes=off", "-c", "max_connections=200")
		svc, err := startService("postgres", cmd, pg.LogPath, syscall.SIGQUIT, func(pgid int) string {
			return fmt.Sprintf("kill -QUIT -%d; sleep 2; kill -KILL -%d; rm -rf %q", pgid, pgid, pg.Dir)
		})
		if err != nil {
			return err
		}
		pg.svc, pg.Port = svc, port
		pg.DSN = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
		if lastErr = pg.ready(60 * time.Second); lastErr == nil {
			return nil
		}
		svc.stopGroupWith(syscall.SIGQUIT, 5*time.Second)
		pg.svc = nil
		if !strings.Contains(tailFile(pg.LogPath, 30), "already in use") {
			break
		}
	}
	return fmt.Errorf("%w\nlog tail:\n%s", lastErr, tailFile(pg.LogPath, 30))
}

// ready waits until the server accepts connections on its port (pg_isready when installed,
// else a TCP connect), the postmaster exits, or timeout passes.
func (pg *Postgres) ready(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	addr := "127.0.0.1:" + strconv.Itoa(pg.Port)
	for {
		if !pg.svc.running() {
			return fmt.Errorf("postgres exited: %v", pg.svc.waitErr)
		}
		var err error
		if isExecutable(filepath.Join(pg.bin, "pg_isready")) {
			err = runLogged(pg.command("pg_isready", "-h", "127.0.0.1", "-p", strconv.Itoa(pg.Port), "-U", "postgres"))
		} else if c, derr := net.DialTimeout("tcp", addr, time.Second); derr == nil {
			c.Close()
		} else {
			err = derr
		}
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres on %s not ready after %s: %v", addr, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
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

// Stop shuts the cluster down immediately and removes its directory. It is idempotent.
func (pg *Postgres) Stop() {
	pg.stopOnce.Do(func() {
		if pg.svc != nil {
			pg.svc.stopGroupWith(syscall.SIGQUIT, 10*time.Second) // also disarms the watchdog
		}
		_ = os.RemoveAll(pg.Dir)
	})
}
