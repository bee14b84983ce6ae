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

// MariaDB is a throwaway MariaDB server listening on 127.0.0.1, with a
// user that has a password (as a real deployment would), so tests exercise
// MYSQL_PWD.
type MariaDB struct {
	Port     int
	Dir      string // holds data/, the socket and mariadb.log; removed on stop
	LogPath  string
	Socket   string
	User     string // "runferry", all privileges, from 127.0.0.1 only
	Password string // the user's password: give it through MYSQL_PWD

	cred     *syscall.Credential
	svc      *service
	stopOnce sync.Once
}

// mariaDBCredential returns nil when not root, else the credential of
// "mysql" (or "nobody"): mariadbd refuses to run as root, and a user
// switch inside it would clear its parent-death signal.
func mariaDBCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	for _, name := range []string{"mysql", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
	}
	return nil, fmt.Errorf("running as root and neither user mysql nor nobody exists")
}

// SharedMariaDB returns one MariaDB server shared by every test of the
// binary, started on first use (Main stops it). Tests sharing it should use
// their own database (MariaDB.CreateDatabase). Missing binaries skip the
// test (fail it under CI: .ci/run installs mariadb-server).
func SharedMariaDB(t testing.TB) *MariaDB {
	t.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.mariadb == nil && shared.mariaErr == nil {
		shared.mariadb, shared.mariaErr = startMariaDB()
	}
	if shared.mariaErr != nil {
		if isMissingBinaries(shared.mariaErr) {
			Unavailable(t, "MariaDB", shared.mariaErr.Error())
		}
		t.Fatalf("testenv: shared MariaDB: %v", shared.mariaErr)
	}
	return shared.mariadb
}

func startMariaDB() (*MariaDB, error) {
	server, ok := lookPath("mariadbd", "/usr/sbin")
	install, ok2 := lookPath("mariadb-install-db", "/usr/bin")
	client, ok3 := lookPath("mariadb", "/usr/bin")
	if !ok || !ok2 || !ok3 {
		return nil, missingBinaries{fmt.Errorf("mariadbd, mariadb-install-db or mariadb not found (apt-get install mariadb-server)")}
	}
	cred, err := mariaDBCredential()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "runferry-mariadb-")
	if err != nil {
		return nil, err
	}
	m := &MariaDB{Dir: dir, LogPath: filepath.Join(dir, "mariadb.log"), Socket: filepath.Join(dir, "mysqld.sock"),
		User: "runferry", Password: "rf-test-Pw-" + strconv.Itoa(os.Getpid()), cred: cred}
	if err := m.start(server, install, client); err != nil {
		m.Stop()
		return nil, err
	}
	return m, nil
}

func (m *MariaDB) command(bin string, args ...string) *exec.Cmd {
	cmd := exec.Command(bin, args...)
	cmd.Dir = m.Dir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MYSQL_PWD=") && !strings.HasPrefix(kv, "MYSQL_HOST=") { // root over the socket has no password
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "LC_ALL=C", "TZ=UTC")
	if m.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: m.cred}
	}
	return cmd
}

func (m *MariaDB) start(server, install, client string) error {
	if m.cred != nil {
		if err := os.Chown(m.Dir, int(m.cred.Uid), int(m.cred.Gid)); err != nil {
			return err
		}
	}
	data := filepath.Join(m.Dir, "data")
	if err := runLogged(m.command(install, "--no-defaults", "--datadir="+data, "--auth-root-authentication-method=normal",
		"--skip-test-db", "--skip-name-resolve")); err != nil {
		return fmt.Errorf("mariadb-install-db: %w", err)
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ { // the free port may be taken meanwhile
		port, err := freePort()
		if err != nil {
			return err
		}
		cmd := m.command(server, "--no-defaults", "--datadir="+data, "--socket="+m.Socket, "--port="+strconv.Itoa(port),
			"--bind-address=127.0.0.1", "--pid-file="+filepath.Join(m.Dir, "mariadb.pid"), "--tmpdir="+m.Dir,
			"--skip-name-resolve", "--skip-log-bin", "--character-set-server=utf8mb4", "--collation-server=utf8mb4_bin",
			"--innodb-buffer-pool-size=64M", "--innodb-log-file-size=32M", "--innodb-flush-log-at-trx-commit=0",
			"--innodb-doublewrite=0", "--sync-binlog=0", "--max-connections=300", "--max-allowed-packet=64M",
			"--performance-schema=OFF")
		svc, err := startService("mariadbd", cmd, m.LogPath, syscall.SIGKILL, func(pgid int) string {
			return fmt.Sprintf("kill -KILL -%d; rm -rf %q", pgid, m.Dir)
		})
		if err != nil {
			return err
		}
		m.svc, m.Port = svc, port
		if lastErr = m.ready(client, 60*time.Second); lastErr == nil {
			break
		}
		svc.stopGroupWith(syscall.SIGKILL, 5*time.Second)
		m.svc = nil
		if !strings.Contains(tailFile(m.LogPath, 30), "already in use") {
			return fmt.Errorf("%w\nlog tail:\n%s", lastErr, tailFile(m.LogPath, 30))
		}
	}
	if lastErr != nil {
		return lastErr
	}
	return m.Exec(client, fmt.Sprintf("CREATE USER '%s'@'127.0.0.1' IDENTIFIED BY '%s'; GRANT ALL ON *.* TO '%s'@'127.0.0.1'",
		m.User, m.Password, m.User))
}

// ready waits until the server accepts connections on its port.
func (m *MariaDB) ready(client string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	addr := "127.0.0.1:" + strconv.Itoa(m.Port)
	for {
		if !m.svc.running() {
			return fmt.Errorf("mariadbd exited: %v", m.svc.waitErr)
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			if err = m.Exec(client, "SELECT 1"); err == nil {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("mariadbd on %s not ready after %s: %v", addr, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Exec runs SQL as root over the server's socket with the mariadb client.
func (m *MariaDB) Exec(client, sql string) error {
	if client == "" {
		client, _ = lookPath("mariadb", "/usr/bin")
	}
	return runLogged(m.command(client, "--no-defaults", "--socket="+m.Socket, "-uroot", "-e", sql))
}

// CreateDatabase creates a database and returns its location for runferry
// (mysql://runferry@127.0.0.1:PORT/NAME); the password is m.Password,
// given through MYSQL_PWD.
func (m *MariaDB) CreateDatabase(t testing.TB, name string) string {
	t.Helper()
	if err := m.Exec("", "CREATE DATABASE `"+name+"` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"); err != nil {
		t.Fatalf("testenv: create MariaDB database %s: %v", name, err)
	}
	return fmt.Sprintf("mysql://%s@127.0.0.1:%d/%s", m.User, m.Port, name)
}

// Stop kills the server and removes its directory. It is idempotent.
func (m *MariaDB) Stop() {
	m.stopOnce.Do(func() {
		if m.svc != nil {
			m.svc.stopGroupWith(syscall.SIGKILL, 10*time.Second) // also disarms the watchdog
		}
		_ = os.RemoveAll(m.Dir)
	})
}
