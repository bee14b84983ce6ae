package testenv

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// A service is a background process group started for tests. Its own process group lets Stop
// kill every child (mlflow forks uvicorn workers). Guards make sure services never outlive
// the test binary that started them, however it ends (panic, go test -timeout, SIGKILL,
// SIGTERM or SIGINT to the binary or to go test):
//
//   - the kernel sends the leader its parent-death signal the moment the binary dies
//     (SysProcAttr.Pdeathsig; the leader is started from a thread that lives as long as the
//     binary, see startOnServiceThread);
//   - a watchdog shell, in a process group of its own, polls the binary and kills the
//     service's whole group once the binary is gone, so children of the leader die too. It
//     ignores SIGINT, SIGTERM and SIGHUP, so a `pkill -f` that matches it along with the
//     binary, or a terminal's signal, cannot end it before its work is done;
//   - SIGINT, SIGTERM or SIGHUP to the binary first sends every live service's group its
//     death signal, then ends the binary by the same signal (see guardSignals);
//   - a binary started by go test ends, after the same sweep, once go test is gone (go test
//     does not pass its own SIGTERM on; see watchGoTest).
type service struct {
	name     string
	cmd      *exec.Cmd
	logPath  string
	deathSig syscall.Signal
	watchdog *watchdog

	stopOnce sync.Once
	exited   chan struct{}
	waitErr  error
}

// startService starts cmd in a new process group with stdout and stderr appended to logPath.
// deathSig is the leader's parent-death signal (SIGKILL for MLflow; SIGQUIT, PostgreSQL's
// immediate shutdown, for a postmaster). onExit is the watchdog's shell command, run once the
// test binary is gone, given the group id; nil means: SIGTERM the group, SIGKILL it 3 s later.
func startService(name string, cmd *exec.Cmd, logPath string, deathSig syscall.Signal, onExit func(pgid int) string) (*service, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pdeathsig = deathSig
	if err := startOnServiceThread(cmd); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	s := &service{name: name, cmd: cmd, logPath: logPath, deathSig: deathSig, exited: make(chan struct{})}
	liveServices.add(s)
	go func() {
		s.waitErr = cmd.Wait()
		close(s.exited)
	}()
	pgid := cmd.Process.Pid
	// "kill -SIG -PGID", not "kill -SIG -- -PGID": dash, /bin/sh here, rejects the "--".
	script := fmt.Sprintf("kill -TERM -%d; sleep 3; kill -KILL -%d", pgid, pgid)
	if onExit != nil {
		script = onExit(pgid)
	}
	s.watchdog = startWatchdog(script)
	guardOnce.Do(func() {
		guardSignals()
		watchGoTest()
	})
	return s, nil
}

// liveServices holds the services started and not yet stopped, for the signal and parent
// guards.
var liveServices = &serviceSet{set: map[*service]struct{}{}}

type serviceSet struct {
	mu  sync.Mutex
	set map[*service]struct{}
}

func (l *serviceSet) add(s *service) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.set[s] = struct{}{}
}

func (l *serviceSet) remove(s *service) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.set, s)
}

// killAll sends every live service's whole process group its death signal (SIGKILL for
// most, SIGQUIT, immediate shutdown, for PostgreSQL), without waiting. The watchdogs do the
// rest (a final SIGKILL sweep, removing data directories) once the binary is gone.
func (l *serviceSet) killAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for s := range l.set {
		_ = syscall.Kill(-s.cmd.Process.Pid, s.deathSig)
	}
}

var guardOnce sync.Once

// guardSignals makes SIGINT, SIGTERM and SIGHUP (those not ignored when the binary started)
// kill every live service's group before the binary ends by that signal, as it would have
// without the handler.
func guardSignals() {
	var sigs []os.Signal
	for _, sig := range []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP} {
		if !signal.Ignored(sig) {
			sigs = append(sigs, sig)
		}
	}
	if len(sigs) == 0 {
		return
	}
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, sigs...)
	go func() {
		sig := <-ch
		liveServices.killAll()
		signal.Reset(sigs...)
		_ = syscall.Kill(os.Getpid(), sig.(syscall.Signal))
		time.Sleep(2 * time.Second) // the signal ends the binary before this returns
		os.Exit(2)
	}()
}

// watchGoTest ends a binary run by go test once go test is gone. SIGTERM to go test (a CI
// cancel, pkill) ends go test alone: its test binary, reparented, would otherwise run on
// with its servers until it next writes to the closed pipe. Binaries started otherwise (by
// a shell, or re-executed by a test) are not watched.
func watchGoTest() {
	ppid := os.Getppid()
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", ppid))
	if err != nil || strings.TrimSpace(string(comm)) != "go" {
		return
	}
	go func() {
		for os.Getppid() == ppid {
			time.Sleep(time.Second)
		}
		fmt.Fprintf(os.Stderr, "testenv: go test (pid %d) is gone: stopping the test servers and exiting\n", ppid)
		liveServices.killAll()
		os.Exit(2)
	}()
}

// serviceThread is the goroutine that starts every service. It is locked to its OS thread
// and never returns, so that thread lives as long as the test binary: the kernel sends the
// parent-death signal when the thread that forked the child exits, not the process, and an
// ordinary goroutine's thread may be any thread.
var serviceThread struct {
	once sync.Once
	reqs chan startRequest
}

type startRequest struct {
	cmd  *exec.Cmd
	done chan error
}

// startOnServiceThread runs cmd.Start on the service thread.
func startOnServiceThread(cmd *exec.Cmd) error {
	serviceThread.once.Do(func() {
		serviceThread.reqs = make(chan startRequest)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread must not be reused or end
			for r := range serviceThread.reqs {
				r.done <- r.cmd.Start()
			}
		}()
	})
	done := make(chan error, 1)
	serviceThread.reqs <- startRequest{cmd: cmd, done: done}
	return <-done
}

// A watchdog is a shell, in its own process group, that polls the test binary and runs a
// cleanup command once the binary is gone. It covers exits that skip t.Cleanup and TestMain:
// panics, go test -timeout, SIGKILL.
type watchdog struct{ cmd *exec.Cmd }

func startWatchdog(onExit string) *watchdog {
	script := `trap '' INT TERM HUP; p=$1; while kill -0 "$p" 2>/dev/null; do sleep 1; done; eval "$2" >/dev/null 2>&1`
	cmd := exec.Command("/bin/sh", "-c", script, "runferry-testenv-watchdog", strconv.Itoa(os.Getpid()), onExit)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil // best effort: t.Cleanup and Main still clean up in the normal case
	}
	go func() { _ = cmd.Wait() }()
	return &watchdog{cmd: cmd}
}

// disarm ends the watchdog without running its cleanup command. A nil watchdog is fine.
func (w *watchdog) disarm() {
	if w != nil {
		_ = syscall.Kill(-w.cmd.Process.Pid, syscall.SIGKILL)
	}
}

// running reports whether the direct child has not exited yet.
func (s *service) running() bool {
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

// stopGroup sends SIGTERM to the process group, waits up to grace for the leader to exit,
// then SIGKILLs the group. It is idempotent.
func (s *service) stopGroup(grace time.Duration) { s.stopGroupWith(syscall.SIGTERM, grace) }

// stopGroupWith is stopGroup with another first signal.
func (s *service) stopGroupWith(sig syscall.Signal, grace time.Duration) {
	s.stopOnce.Do(func() {
		liveServices.remove(s)
		pgid := s.cmd.Process.Pid
		_ = syscall.Kill(-pgid, sig)
		select {
		case <-s.exited:
		case <-time.After(grace):
		}
		// Children (workers) may outlive the leader: always sweep the group.
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-s.exited
		for deadline := time.Now().Add(5 * time.Second); GroupAlive(pgid) && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
		}
		s.watchdog.disarm()
	})
}

// logTail returns the last n lines of the service's log.
func (s *service) logTail(n int) string { return tailFile(s.logPath, n) }

func tailFile(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// StartLogEnv names a file to which every MLflow server start (and restart) appends one
// line, "mlflow start BACKEND-URI uvicorn=in-process|child server=SERVER-PID pid=PID dir=PACKAGE-DIR",
// for counting the starts of a test run (docs/TESTING.md): RUNFERRY_TESTENV_START_LOG=/tmp/starts
// go test ./pkg/... SERVER-PID is the server's process (its group's leader), PID the test
// binary's; internal/testenv/cmd/testcpu reads the former to tell servers from other Python.
const StartLogEnv = "RUNFERRY_TESTENV_START_LOG"

// logStart appends a line naming what, detail, the binary and its folder (the package) to
// $StartLogEnv, if set.
func logStart(what, detail string) {
	path := os.Getenv(StartLogEnv)
	if path == "" {
		return
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	wd, _ := os.Getwd()
	fmt.Fprintf(f, "%s %s pid=%d dir=%s\n", what, detail, os.Getpid(), wd)
}

// runLogged runs cmd to completion and returns an error holding its combined output.
func runLogged(cmd *exec.Cmd) error {
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w\n%s", strings.Join(cmd.Args, " "), err, out.String())
	}
	return nil
}

// GroupAlive reports whether any process of process group pgid is alive (zombies, which
// are dead but not yet reaped by their parent, do not count). It reads /proc.
func GroupAlive(pgid int) bool { return len(GroupPids(pgid)) > 0 }

// GroupPids returns the live processes (zombies left out) of process group pgid. It reads
// /proc.
func GroupPids(pgid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) >= 3 && f[0] != "Z" && f[0] != "X" && f[2] == strconv.Itoa(pgid) {
			pids = append(pids, pid)
		}
	}
	return pids
}
