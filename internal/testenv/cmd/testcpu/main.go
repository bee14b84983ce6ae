// Command testcpu runs one command (a prebuilt test binary, usually) and says where its CPU
// went: user and system time, processes and minor page faults of the command and of every
// process it started, grouped by what they are (the test binary itself, MLflow servers,
// other Python processes, PostgreSQL, MariaDB, the go tool, the watchdog shells, ...). It is a
// measuring tool for docs/TESTING.md, not part of the tests.
//
//	testcpu [-acct FILE] [-json] -- ./pkg.test -test.run X
//
// It turns on the kernel's process accounting (acct(2), BSD v3 records; needs root) into
// FILE for the command's lifetime, makes itself the child subreaper (so that processes
// whose parent died stay in its tree and are reaped by it), runs the command with
// RUNFERRY_TESTENV_START_LOG set (testenv names each MLflow server's pid there), waits
// until every descendant has exited, turns accounting off, and reads the records of its
// descendants. Process accounting is machine-wide: run one testcpu at a time. The
// accounted times are the kernel's, rounded down to 10 ms per process; the total the
// kernel gives testcpu for its reaped children (wait4) is printed beside their sum.
package main

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"
)

// acctV3 is struct acct_v3 of <linux/acct.h>, 64 bytes, little-endian on amd64.
type acctV3 struct {
	Flag     uint8
	Version  uint8
	Tty      uint16
	ExitCode uint32
	UID, GID uint32
	Pid      uint32
	Ppid     uint32
	Btime    uint32
	Etime    float32
	Utime    uint16 // comp_t, in AHZ (100 Hz) ticks
	Stime    uint16
	Mem      uint16
	IO       uint16
	RW       uint16
	Minflt   uint16
	Majflt   uint16
	Swaps    uint16
	Comm     [16]byte
}

// compT decodes a comp_t: 13-bit mantissa, 3-bit base-8 exponent.
func compT(v uint16) float64 { return float64(uint64(v&0x1fff) << (3 * uint(v>>13))) }

const ahz = 100.0

type proc struct {
	pid, ppid int
	comm      string
	user, sys float64 // seconds
	minflt    float64
	btime     uint32
}

func main() {
	acctFile := flag.String("acct", "", "process accounting file (default: a temporary file)")
	asJSON := flag.Bool("json", false, "print the groups as JSON instead of a table")
	already := flag.Bool("on", false, "accounting is already on into -acct FILE (turned on and off by hand, so that several testcpu can run at once): only read it")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: testcpu [-acct FILE] [-json] -- COMMAND [ARG...]")
		os.Exit(2)
	}
	if err := run(*acctFile, *already, *asJSON, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "testcpu:", err)
		os.Exit(1)
	}
}

func run(acctFile string, already, asJSON bool, argv []string) error {
	tmp, err := os.MkdirTemp("", "testcpu-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if acctFile == "" {
		if already {
			return errors.New("-on needs -acct FILE")
		}
		acctFile = filepath.Join(tmp, "pacct")
	}
	startLog := filepath.Join(tmp, "starts")
	accounting := false
	if !already {
		if err := os.WriteFile(acctFile, nil, 0o600); err != nil {
			return err
		}
		if err := acct(acctFile); err != nil {
			return fmt.Errorf("acct(%s): %w (process accounting needs root)", acctFile, err)
		}
		accounting = true
	}
	defer func() {
		if accounting {
			_ = acct("")
		}
	}()
	// PR_SET_CHILD_SUBREAPER: orphans of the tree are reparented to us, not to init.
	if _, _, e := syscall.RawSyscall(syscall.SYS_PRCTL, 36, 1, 0); e != 0 {
		return fmt.Errorf("prctl(PR_SET_CHILD_SUBREAPER): %v", e)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), "RUNFERRY_TESTENV_START_LOG="+startLog)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return err
	}
	root := cmd.Process.Pid
	// Reap the command and then every orphan handed to us, until none is left.
	exitCode, total := -1, rusage{}
	for {
		var ws syscall.WaitStatus
		var r syscall.Rusage
		pid, err := syscall.Wait4(-1, &ws, 0, &r)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if errors.Is(err, syscall.ECHILD) {
			break
		}
		if err != nil {
			return err
		}
		total.add(r)
		if pid == root {
			exitCode = ws.ExitStatus()
		}
	}
	wall := time.Since(start)
	if accounting {
		if err := acct(""); err != nil {
			return err
		}
		accounting = false
	}

	procs, err := readAcct(acctFile)
	if err != nil {
		return err
	}
	servers := mlflowServerPids(startLog)
	groups := classify(procs, root, servers)
	var load string
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		load = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	if asJSON {
		return json.NewEncoder(os.Stdout).Encode(map[string]any{
			"command": argv, "exit": exitCode, "wall_s": wall.Seconds(), "loadavg_end": load,
			"wait4_user_s": total.user, "wait4_sys_s": total.sys, "groups": groups,
			"mlflow_starts": len(servers),
		})
	}
	w := bufio.NewWriter(os.Stderr)
	defer w.Flush()
	fmt.Fprintf(w, "\ntestcpu: %s: exit %d, wall %.1f s, load at end %s\n", strings.Join(argv, " "), exitCode, wall.Seconds(), load)
	fmt.Fprintf(w, "testcpu: wait4 total: user %.1f s, sys %.1f s; MLflow starts in the start log: %d\n", total.user, total.sys, len(servers))
	fmt.Fprintf(w, "%-34s %6s %9s %9s %11s\n", "group", "procs", "user s", "sys s", "minflt")
	var su, ss, sf float64
	var sn int
	for _, g := range groups {
		fmt.Fprintf(w, "%-34s %6d %9.1f %9.1f %11.0f\n", g.Name, g.Procs, g.User, g.Sys, g.Minflt)
		su, ss, sf, sn = su+g.User, ss+g.Sys, sf+g.Minflt, sn+g.Procs
	}
	fmt.Fprintf(w, "%-34s %6d %9.1f %9.1f %11.0f\n", "sum (accounted)", sn, su, ss, sf)
	return nil
}

type rusage struct{ user, sys float64 }

func (r *rusage) add(u syscall.Rusage) {
	r.user += float64(u.Utime.Sec) + float64(u.Utime.Usec)/1e6
	r.sys += float64(u.Stime.Sec) + float64(u.Stime.Usec)/1e6
}

// acct turns process accounting on into path, or off for "".
func acct(path string) error {
	var p *byte
	if path != "" {
		b, err := syscall.BytePtrFromString(path)
		if err != nil {
			return err
		}
		p = b
	}
	if _, _, e := syscall.Syscall(syscall.SYS_ACCT, uintptr(unsafe.Pointer(p)), 0, 0); e != 0 {
		return e
	}
	return nil
}

func readAcct(path string) ([]*proc, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	const size = 64
	var out []*proc
	for off := 0; off+size <= len(data); off += size {
		var r acctV3
		if _, err := binary.Decode(data[off:off+size], binary.LittleEndian, &r); err != nil {
			return nil, err
		}
		if r.Version&0x0f != 3 {
			return nil, fmt.Errorf("%s: record %d has version %d, not 3", path, off/size, r.Version)
		}
		out = append(out, &proc{
			pid: int(r.Pid), ppid: int(r.Ppid), btime: r.Btime,
			comm:   strings.TrimRight(string(r.Comm[:]), "\x00"),
			user:   compT(r.Utime) / ahz,
			sys:    compT(r.Stime) / ahz,
			minflt: compT(r.Minflt),
		})
	}
	return out, nil
}

// mlflowServerPids reads the server pids testenv logged ("server=PID").
func mlflowServerPids(path string) map[int]bool {
	pids := map[int]bool{}
	data, err := os.ReadFile(path)
	if err != nil {
		return pids
	}
	for _, line := range strings.Split(string(data), "\n") {
		for _, f := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(f, "server="); ok {
				if n, err := strconv.Atoi(v); err == nil {
					pids[n] = true
				}
			}
		}
	}
	return pids
}

// Group is one row of the table: the processes of one kind, each with the processes it
// started (a Python script's wandb-core, the go tool's compiler, a watchdog's sleeps).
type Group struct {
	Name   string
	Procs  int
	User   float64
	Sys    float64
	Minflt float64
}

// classify keeps the records of root's tree and sums them by group. A process belongs to
// the group of its topmost ancestor below the test binary (the binary's own child), except
// that MLflow servers are recognised by pid wherever they are. Pids are reused, so a record
// is linked to the latest earlier record of its parent's pid that began no later than it.
func classify(procs []*proc, root int, servers map[int]bool) []Group {
	// Records are written at exit: children before their parents. Index by pid, keeping
	// every record in order.
	byPid := map[int][]*proc{}
	for _, p := range procs {
		byPid[p.pid] = append(byPid[p.pid], p)
	}
	parentOf := func(p *proc) *proc {
		var best *proc
		for _, q := range byPid[p.ppid] {
			if q.btime <= p.btime && (best == nil || q.btime >= best.btime) {
				best = q
			}
		}
		return best
	}
	self := os.Getpid()
	rootComm := ""
	for _, p := range byPid[root] {
		rootComm = p.comm
	}
	sums := map[string]*Group{}
	for _, p := range procs {
		// Walk up to root; the last process below root names the group.
		chain := []*proc{p}
		inTree, cur := false, p
		for i := 0; i < 64; i++ {
			if cur.pid == root {
				inTree = true
				break
			}
			// A process whose parent died before it was reparented to testcpu (the
			// subreaper): its own command names its group.
			if cur.ppid == root || cur.ppid == self {
				inTree = true
				break
			}
			par := parentOf(cur)
			if par == nil {
				break
			}
			chain = append(chain, par)
			cur = par
		}
		if !inTree || (p.ppid == self && p.comm == "testcpu") { // the Go runtime's pidfd probe
			continue
		}
		name := ""
		for _, c := range chain {
			if servers[c.pid] {
				name = "MLflow servers"
				break
			}
		}
		if name == "" {
			top := chain[len(chain)-1]
			switch {
			case top.pid == root && p == top:
				name = "test binary (itself)"
			case top.pid == root:
				name = "other (parent gone)"
			case top.comm == rootComm:
				name = "test binary (re-run as a child)"
			default:
				name = groupName(top.comm)
				if top.ppid == self && top.pid != root {
					name += " (orphaned)"
				}
			}
		}
		g := sums[name]
		if g == nil {
			g = &Group{Name: name}
			sums[name] = g
		}
		g.Procs++
		g.User += p.user
		g.Sys += p.sys
		g.Minflt += p.minflt
	}
	var out []Group
	for _, g := range sums {
		out = append(out, *g)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].User+out[i].Sys, out[j].User+out[j].Sys
		if math.Abs(a-b) > 1e-9 {
			return a > b
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// groupName names the group of a direct child of the test binary by its command name. The
// kernel records the name of the process's last thread to exit, which for some programs is
// a thread's: pyarrow's jemalloc thread in Python, Chromium's thread pools.
func groupName(comm string) string {
	switch {
	case strings.HasPrefix(comm, "python") || comm == "jemalloc_bg_thd":
		return "Python (clients, fixtures, SDK)"
	case comm == "mlflow":
		return "MLflow servers" // started as the venv's mlflow (child layout)
	case comm == "postgres" || comm == "initdb" || comm == "pg_ctl" || comm == "psql":
		return "PostgreSQL"
	case strings.HasPrefix(comm, "mariadb") || strings.HasPrefix(comm, "mysql"):
		return "MariaDB"
	case comm == "sh" || comm == "dash" || comm == "bash":
		return "shells (watchdogs, scripts)"
	case comm == "go":
		return "go tool (builds)"
	case comm == "runferry":
		return "runferry binary"
	case comm == "node" || strings.HasPrefix(comm, "azurite"):
		return "Azurite"
	case comm == "versitygw":
		return "versitygw"
	case comm == "fake-gcs-server":
		return "fake-gcs-server"
	case strings.HasPrefix(comm, "chrom") || comm == "ThreadPoolForeg" || comm == "HangWatcher" ||
		comm == "SharedWorker th" || comm == "Thread<00>" || comm == "CompositorTileW" || comm == "ThreadPoolServi":
		return "Chromium"
	}
	return "other: " + comm
}
