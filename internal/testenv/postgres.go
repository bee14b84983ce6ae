package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
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
	watchdog *watchdog
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

// postgresBinDir returns the directory holding initdb, pg_ctl and postgres.
func postgresBinDir() (string, error) {
	initdb, ok := lookPath("initdb", pgBinDirs...)
	if !ok {
		return "", fmt.Errorf("initdb not found on PATH or in /usr/lib/postgresql/*/bin (apt-get install postgresql)")
	}
	if real, err := filepath.EvalSymlinks(initdb); err == nil {
		initdb = real
	}
	dir := filepath.Dir(initdb)
	for _, tool := range []string{"pg_ctl", "postgres"} {
		if !isExecutable(filepath.Join(dir, tool)) {
			return "", fmt.Errorf("%s not found next to %s", tool, initdb)
		}
	}
	return dir, nil
}

// StartPostgres starts a new cluster (initdb, then pg_ctl start on a free port) and stops it
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
		opts := fmt.Sprintf("-k %s -c listen_addresses=127.0.0.1 -p %d -c fsync=off "+
			"-c synchronous_commit=off -c full_page_writes=off -c max_connections=200", pg.Dir, port)
		// pg_ctl -w waits until the server accepts connections.
		lastErr = runLogged(pg.command("pg_ctl", "-D", data, "-l", pg.LogPath, "-o", opts, "-w", "-t", "60", "start"))
		if lastErr == nil {
			pg.Port = port
			pg.DSN = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
			pg.watch(data)
			return pg.ready()
		}
	}
	return fmt.Errorf("%w\nlog tail:\n%s", lastErr, tailFile(pg.LogPath, 30))
}

// watch starts a watchdog that shuts the postmaster down (SIGQUIT: immediate) and removes
// the directory if the test binary dies without calling Stop.
func (pg *Postgres) watch(data string) {
	onExit := fmt.Sprintf(`pid=$(head -n 1 %q/postmaster.pid 2>/dev/null); [ -n "$pid" ] && kill -QUIT "$pid"; sleep 2; rm -rf %q`, data, pg.Dir)
	pg.watchdog = startWatchdog(onExit)
}

// ready double-checks with pg_isready when it is installed.
func (pg *Postgres) ready() error {
	if !isExecutable(filepath.Join(pg.bin, "pg_isready")) {
		return nil
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := runLogged(pg.command("pg_isready", "-h", "127.0.0.1", "-p", strconv.Itoa(pg.Port), "-U", "postgres"))
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(200 * time.Millisecond)
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
		data := filepath.Join(pg.Dir, "data")
		if _, err := os.Stat(filepath.Join(data, "postmaster.pid")); err == nil {
			_ = runLogged(pg.command("pg_ctl", "-D", data, "-m", "immediate", "-w", "-t", "30", "stop"))
		}
		pg.watchdog.disarm()
		_ = os.RemoveAll(pg.Dir)
	})
}
