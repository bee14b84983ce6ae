package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// objectServer is what the object-store servers (S3Server, AzuriteServer,
// GCSServer) share: a process serving on 127.0.0.1 from a temporary folder
// of its own, which holds its log and goes with it.
type objectServer struct {
	Dir string // the server's folder (its data and log)
	svc *service
}

// newObjectServer makes the server's folder (named after what) and picks
// its port.
func newObjectServer(what string) (objectServer, int, error) {
	dir, err := os.MkdirTemp("", "runferry-"+what+"-")
	if err != nil {
		return objectServer{}, 0, err
	}
	port, err := freePort()
	if err != nil {
		os.RemoveAll(dir)
		return objectServer{}, 0, err
	}
	return objectServer{Dir: dir}, port, nil
}

// start runs cmd as the server called name, its log name.log in the
// server's folder, killed with its process group (and its folder removed)
// if the test binary dies, and waits up to wait for it to accept
// connections on host. On failure the server is stopped and its folder
// removed, and the error holds the log's last lines.
func (s *objectServer) start(name string, cmd *exec.Cmd, host string, wait time.Duration) error {
	dir := s.Dir
	var err error
	s.svc, err = startService(name, cmd, filepath.Join(dir, name+".log"), syscall.SIGKILL,
		func(pgid int) string {
			// Also remove its folder, which Stop removes when the binary ends normally.
			return fmt.Sprintf("kill -KILL -%d; rm -rf '%s'", pgid, dir)
		})
	if err != nil {
		os.RemoveAll(dir)
		return err
	}
	for deadline := time.Now().Add(wait); ; {
		c, err := net.DialTimeout("tcp", host, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if !s.svc.running() || time.Now().After(deadline) {
			log := s.svc.logTail(20)
			s.Stop()
			return fmt.Errorf("%s did not start: %s", name, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// PID returns the server's process id, also its process group's.
func (s *objectServer) PID() int { return s.svc.cmd.Process.Pid }

// LogTail returns the last n lines of the server's log.
func (s *objectServer) LogTail(n int) string { return s.svc.logTail(n) }

// Stop stops the server and removes its folder.
func (s *objectServer) Stop() {
	if s.svc != nil {
		s.svc.stopGroup(3 * time.Second)
	}
	os.RemoveAll(s.Dir)
}

// freshName returns a new bucket (or container) name starting with
// prefix: prefix in lower case, a dash and 8 random hex digits.
func freshName(prefix string) string {
	var b [4]byte
	rand.Read(b[:])
	return strings.ToLower(prefix) + "-" + hex.EncodeToString(b[:])
}

// setEnv sets each variable of env for the test.
func setEnv(t testing.TB, env map[string]string) {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
}
