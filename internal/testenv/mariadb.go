package testenv

import (
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// MariaDB is a throwaway MariaDB server listening on 127.0.0.1, with a
// user that has a password (as a real deployment would), so tests exercise
// MYSQL_PWD. Dir holds data/, the socket and mariadb.log.
type MariaDB struct {
	dbServer
	Socket   string
	User     string // "runferry", all privileges, from 127.0.0.1 only
	Password string // the user's password: give it through MYSQL_PWD

	client string // the mariadb client
}

// SharedMariaDB returns one MariaDB server shared by every test of the
// binary, started on first use (Main stops it). Tests sharing it should use
// their own database (MariaDB.CreateDatabase). Missing binaries skip the
// test (fail it under CI: .ci/run installs mariadb-server).
func SharedMariaDB(t testing.TB) *MariaDB {
	t.Helper()
	return sharedMariaDB.get(t, startMariaDB)
}

func startMariaDB() (*MariaDB, error) {
	server, ok := lookPath("mariadbd", "/usr/sbin")
	install, ok2 := lookPath("mariadb-install-db", "/usr/bin")
	client, ok3 := lookPath("mariadb", "/usr/bin")
	if !ok || !ok2 || !ok3 {
		return nil, missingBinaries{fmt.Errorf("mariadbd, mariadb-install-db or mariadb not found (apt-get install mariadb-server)")}
	}
	m := &MariaDB{User: "runferry", Password: "rf-test-Pw-" + strconv.Itoa(os.Getpid()), client: client}
	if err := m.init("runferry-mariadb-", "mariadb.log", syscall.SIGKILL, "mysql", "nobody"); err != nil {
		m.Stop()
		return nil, err
	}
	m.Socket = filepath.Join(m.Dir, "mysqld.sock")
	if err := m.start(server, install); err != nil {
		m.Stop()
		return nil, err
	}
	return m, nil
}

// command runs a MariaDB binary; root over the socket has no password, so
// MYSQL_PWD and MYSQL_HOST are not passed on. TMPDIR is the server's own
// directory: mariadb-install-db's bootstrap server, which gets no --tmpdir,
// would otherwise keep its temporary tables in the shared /tmp as
// #sql-temptable-*, and every MariaDB server starting there deletes all
// #sql* files it finds, so two servers set up at once (test binaries run
// in parallel) broke each other's install ("Unknown table
// 'mysql.tmp_user_sys'"; TestDBServersStartConcurrently).
func (m *MariaDB) command(bin string, args ...string) *exec.Cmd {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MYSQL_PWD=") && !strings.HasPrefix(kv, "MYSQL_HOST=") && !strings.HasPrefix(kv, "TMPDIR=") {
			env = append(env, kv)
		}
	}
	return m.dbServer.command(bin, append(env, "LC_ALL=C", "TZ=UTC", "TMPDIR="+m.Dir), args...)
}

func (m *MariaDB) start(server, install string) error {
	data := filepath.Join(m.Dir, "data")
	if err := runLogged(m.command(install, "--no-defaults", "--datadir="+data, "--auth-root-authentication-method=normal",
		"--skip-test-db", "--skip-name-resolve")); err != nil {
		return fmt.Errorf("mariadb-install-db: %w", err)
	}
	err := m.serve(dbEngine{
		name: "mariadbd",
		onExit: func(pgid int, dir string) string {
			return fmt.Sprintf("kill -KILL -%d; rm -rf %q", pgid, dir)
		},
		server: func(port int) *exec.Cmd {
			return m.command(server, "--no-defaults", "--datadir="+data, "--socket="+m.Socket, "--port="+strconv.Itoa(port),
				"--bind-address=127.0.0.1", "--pid-file="+filepath.Join(m.Dir, "mariadb.pid"), "--tmpdir="+m.Dir,
				"--skip-name-resolve", "--skip-log-bin", "--character-set-server=utf8mb4", "--collation-server=utf8mb4_bin",
				"--innodb-buffer-pool-size=64M", "--innodb-log-file-size=32M", "--innodb-flush-log-at-trx-commit=0",
				"--innodb-doublewrite=0", "--sync-binlog=0", "--max-connections=300", "--max-allowed-packet=64M",
				"--performance-schema=OFF")
		},
		probe: func() error {
			if err := m.dial(); err != nil {
				return err
			}
			return m.Exec("", "SELECT 1")
		},
	})
	if err != nil {
		return err
	}
	return m.Exec("", fmt.Sprintf("CREATE USER '%s'@'127.0.0.1' IDENTIFIED BY '%s'; GRANT ALL ON *.* TO '%s'@'127.0.0.1'",
		m.User, m.Password, m.User))
}

// Exec runs SQL as root over the server's socket with the mariadb client
// (client, or the one found at start when "").
func (m *MariaDB) Exec(client, sql string) error {
	if client == "" {
		client = m.client
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

// DSN returns the go-sql-driver/mysql data source name
// (USER:PASSWORD@tcp(127.0.0.1:PORT)/NAME) of loc, a location
// CreateDatabase returned, for a test that reads or changes that database
// itself with database/sql; a location it cannot read fails the test.
func (m *MariaDB) DSN(t testing.TB, loc string) string {
	t.Helper()
	u, err := url.Parse(loc)
	if err != nil || u.Scheme != "mysql" || u.Host == "" {
		t.Fatalf("testenv: %q is not a MariaDB database's location (%v)", loc, err)
	}
	return fmt.Sprintf("%s:%s@tcp(%s)%s", m.User, m.Password, u.Host, u.Path)
}
