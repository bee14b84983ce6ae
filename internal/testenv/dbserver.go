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
	"time"
)

// dbServer is what a throwaway database server (PostgreSQL, MariaDB) has
// whatever the engine: a temporary directory, the user it runs as, the
// server process as a service (own process group, parent-death signal,
// watchdog) and its port. Postgres and MariaDB embed it and add the
// engine's commands.
type dbServer struct {
	Port    int
	Dir     string // holds data/, the socket and the log; removed on stop
	LogPath string

	cred     *syscall.Credential
	stopSig  syscall.Signal // the engine's fast shutdown, also the parent-death signal
	svc      *service
	stopOnce sync.Once
}

// A dbEngine says how to run one kind of database server.
type dbEngine struct {
	name string // the server binary, in messages: "postgres", "mariadbd"
	// onExit is the watchdog's shell command once the test binary is gone.
	onExit func(pgid int, dir string) string
	// server returns the server's command, listening on 127.0.0.1:port.
	server func(port int) *exec.Cmd
	// probe checks once whether the server answers.
	probe func() error
}

// init makes the temporary directory of a server (prefix names it) whose
// log is logName, owned by the first of users that exists when running as
// root: initdb and mariadbd refuse to run as root, and a user switch inside
// the server would clear its parent-death signal.
func (d *dbServer) init(prefix, logName string, stopSig syscall.Signal, users ...string) error {
	cred, err := credentialOf(users...)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return err
	}
	d.Dir, d.LogPath, d.cred, d.stopSig = dir, filepath.Join(dir, logName), cred, stopSig
	if cred != nil {
		return os.Chown(dir, int(cred.Uid), int(cred.Gid))
	}
	return nil
}

// credentialOf returns nil when not root, else the credential of the first
// of users that exists.
func credentialOf(users ...string) (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	for _, name := range users {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
	}
	return nil, fmt.Errorf("running as root and neither user %s exists", strings.Join(users, " nor "))
}

// command returns a command running bin in the server's directory as the
// server's user, with env as its environment.
func (d *dbServer) command(bin string, env []string, args ...string) *exec.Cmd {
	cmd := exec.Command(bin, args...)
	cmd.Dir = d.Dir
	cmd.Env = env
	if d.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: d.cred}
	}
	return cmd
}

// serve starts the server on a free port and waits until it answers. A
// port taken meanwhile ("already in use" in the log) is retried on another,
// up to three times. The error carries the log's tail.
func (d *dbServer) serve(e dbEngine) error {
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := freePort()
		if err != nil {
			return err
		}
		svc, err := startService(e.name, e.server(port), d.LogPath, d.stopSig, func(pgid int) string { return e.onExit(pgid, d.Dir) })
		if err != nil {
			return err
		}
		d.svc, d.Port = svc, port
		if lastErr = d.ready(e, 60*time.Second); lastErr == nil {
			return nil
		}
		svc.stopGroupWith(d.stopSig, 5*time.Second)
		d.svc = nil
		if !strings.Contains(tailFile(d.LogPath, 30), "already in use") {
			break
		}
	}
	return fmt.Errorf("%w\nlog tail:\n%s", lastErr, tailFile(d.LogPath, 30))
}

// ready waits until e.probe succeeds, the server exits, or timeout passes.
func (d *dbServer) ready(e dbEngine, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if !d.svc.running() {
			return fmt.Errorf("%s exited: %v", e.name, d.svc.waitErr)
		}
		err := e.probe()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s on 127.0.0.1:%d not ready after %s: %v", e.name, d.Port, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// dial checks that the server's port accepts a TCP connection.
func (d *dbServer) dial() error {
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(d.Port), time.Second)
	if err == nil {
		c.Close()
	}
	return err
}

// Stop shuts the server down with its fast shutdown signal (then SIGKILL)
// and removes its directory. It is idempotent.
func (d *dbServer) Stop() {
	d.stopOnce.Do(func() {
		if d.svc != nil {
			d.svc.stopGroupWith(d.stopSig, 10*time.Second) // also disarms the watchdog
		}
		_ = os.RemoveAll(d.Dir)
	})
}

type missingBinaries struct{ error }

func isMissingBinaries(err error) bool { _, ok := err.(missingBinaries); return ok }
