package mlflow_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sources/dataset"
)

// bigRuns is the canonical dataset plus 10 runs of 2000 points each (two
// keys, 1000 steps): each big run takes two log-batches of 1000 points and a
// file, so a kill while a run is written can fall between its batches.
func bigRuns() *dataset.Dataset {
	d := dataset.Canonical()
	for i := range 10 {
		rd := &dataset.RunData{Run: schema.Run{Origin: schema.Ref{System: "memory", ID: fmt.Sprintf("run-big-%d", i)},
			Experiment: d.Experiments[i%2].Origin, Name: fmt.Sprintf("big %d", i), Status: schema.StatusFinished,
			Start: time.Date(2024, 5, 1, i, 0, 0, 0, time.UTC), End: time.Date(2024, 5, 1, i, 30, 0, 0, time.UTC),
			Params: []schema.Param{{Key: "i", Value: fmt.Sprint(i)}}}}
		for step := range int64(1000) {
			t := 1_714_000_000_000 + step*10
			rd.Metrics = append(rd.Metrics,
				schema.Metric{Key: "loss", Value: 1 / float64(step+1+int64(i)), Step: step, Time: t},
				schema.Metric{Key: "lr", Value: float64(i) * 1e-3, Step: step, Time: t + 1})
		}
		rd.Files = []dataset.File{{Path: "model/weights.bin", Content: bytes.Repeat([]byte{byte(i)}, 50_000)}}
		d.Runs = append(d.Runs, rd)
	}
	return d
}

var failedLine = regexp.MustCompile(`(?m)^FAILED (\S+) `)

// experimentExists reports whether the server at base answers and holds an experiment
// whose name starts with prefix.
func experimentExists(base, prefix string) bool {
	return len(experimentIDs(base, prefix)) > 0
}

// experimentIDs returns the ids of the experiments whose names start with prefix on the
// server at base (none when it does not answer).
func experimentIDs(base, prefix string) []string {
	body, _ := json.Marshal(map[string]any{"max_results": 100, "filter": "name LIKE '" + prefix + "%'", "view_type": "ALL"})
	resp, err := http.Post(base+"/api/2.0/mlflow/experiments/search", "application/json", bytes.NewReader(body))
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var out struct {
		Experiments []struct {
			ID string `json:"experiment_id"`
		} `json:"experiments"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&out) != nil {
		return nil
	}
	var ids []string
	for _, e := range out.Experiments {
		ids = append(ids, e.ID)
	}
	return ids
}

// runsCreated returns how many runs (deleted ones included) the server at base holds in
// the experiments whose names start with prefix (0 when it does not answer).
func runsCreated(base, prefix string) int {
	ids := experimentIDs(base, prefix)
	if len(ids) == 0 {
		return 0
	}
	body, _ := json.Marshal(map[string]any{"experiment_ids": ids, "max_results": 1000, "run_view_type": "ALL"})
	resp, err := http.Post(base+"/api/2.0/mlflow/runs/search", "application/json", bytes.NewReader(body))
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	var out struct {
		Runs []json.RawMessage `json:"runs"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&out) != nil {
		return 0
	}
	return len(out.Runs)
}

// TestServerKilledMidCopy copies a Parquet archive of 15 runs (20 000
// points) into a real SQLite-backed MLflow server with the runferry binary
// and, mid-copy, kills the server (SIGKILL to its process group) and
// restarts it on the same port and stores about 1.5 s later. It does so at
// two moments of the copy's progress, each into a fresh experiment prefix
// with its own ledger: at its first write (an experiment under the prefix,
// no run created yet) and once 5 of the 15 runs were created (the copy
// writes 4 runs at a time, so the kill falls while runs are being written,
// some already committed). A third kill once 10 runs were created was the
// second's class again (runs committed, runs cut short, runs not started)
// and was dropped for the test's time (docs/TESTING.md, tt13).
// The copy never hangs; it either completes, exits 1 saying the server is
// unreachable when no run could be written, or exits 3 naming its failed
// runs, never 0 with runs missing; a re-run with the same ledger completes;
// and `runferry check` and a full read-back find every run once, every
// point once.
func TestServerKilledMidCopy(t *testing.T) {
	t.Parallel() // no package variable set; its own server (docs/TESTING.md, tt14)
	if testing.Short() {
		t.Skip("kills and restarts an MLflow server twice (a minute or more)")
	}
	srv := testenv.StartMLflow(t)
	bin := buildCLI(t)
	want := bigRuns()
	arch := archive(t, want)
	kills := 0 // kills that landed while the copy ran
	defer func() {
		if kills == 0 && !t.Failed() {
			t.Errorf("every copy finished before its kill: the test proved nothing (make the runs bigger)")
		}
	}()
	for i, killAt := range []int{0, 5} {
		t.Run(fmt.Sprintf("kill-at-%d-runs", killAt), func(t *testing.T) {
			prefix := fmt.Sprintf("restart-%d-%d/", i, testenv.FreePort(t))
			dst := "mlflow+" + srv.URL + "?experiment-prefix=" + prefix
			state := filepath.Join(t.TempDir(), "ledger.db")
			copyCmd := func() *exec.Cmd {
				ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
				t.Cleanup(cancel)
				cmd := exec.CommandContext(ctx, bin, "copy", "parquet:"+arch, dst, "--state", state, "--concurrency", "4", "-q", "--keep-personal")
				cmd.Env = append(os.Environ(), "MLFLOW_TRACKING_URI=")
				return cmd
			}
			cmd := copyCmd()
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			start := time.Now()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done, exited := make(chan error, 1), make(chan struct{})
			go func() { done <- cmd.Wait(); close(exited) }()
			// The kill moments count the copy's progress from its first
			// write (an experiment under the prefix): a server that never
			// answered is given only a few seconds (the client fails fast on
			// a wrong address), so a kill before the copy reached the server
			// would test that instead, on a slow machine. Counting created
			// runs rather than seconds keeps the kills inside the copy on a
			// fast machine and a loaded one alike.
			reached := make(chan struct{})
			go func() {
				for !experimentExists(srv.URL, prefix) || killAt > 0 && runsCreated(srv.URL, prefix) < killAt {
					select {
					case <-exited:
						return
					case <-time.After(50 * time.Millisecond):
					}
				}
				close(reached)
			}()
			var err error
			finished := false
			select {
			case <-reached:
				// The copy may have ended between the last poll and now.
				select {
				case err = <-done:
					finished = true
				default:
					kills++
				}
			case err = <-done:
				finished = true
			}
			if finished {
				t.Logf("the copy finished in %s, before the kill at %d runs", time.Since(start), killAt)
			}
			srv.Kill()
			killed := time.Now()
			time.Sleep(1500 * time.Millisecond)
			srv.Restart(t)
			t.Logf("server down for %s (killed %s into the copy, at %d runs created)", time.Since(killed).Round(time.Millisecond), killed.Sub(start).Round(time.Millisecond), killAt)
			if !finished {
				select {
				case err = <-done:
				case <-time.After(4 * time.Minute):
					cmd.Process.Kill()
					t.Fatalf("the copy hangs after the server came back\n%s", out.String())
				}
			}
			code, text := cmdExit(err), out.String()
			if err == nil {
				code = 0
			}
			failed := failedLine.FindAllStringSubmatch(text, -1)
			t.Logf("copy across the restart: exit %d after %s, %d FAILED line(s); last line: %s",
				code, time.Since(start).Round(time.Millisecond), len(failed), lastLine(text))
			switch {
			case code == 0 || code == 3 && strings.Contains(text, " 0 failed"):
				if len(failed) > 0 {
					t.Fatalf("exit %d with FAILED lines:\n%s", code, text)
				}
			case code == 3:
				// Some runs failed: each is named, and the total says how many.
				if len(failed) == 0 || !strings.Contains(text, fmt.Sprintf(" %d failed", len(failed))) {
					t.Fatalf("exit 3 without naming the failed runs:\n%s", text)
				}
			case code == 1:
				// No run could be written while the server was away: the
				// job failed as a whole and says why.
				if !strings.Contains(text, "no run could be written: a server is unreachable") {
					t.Fatalf("exit 1 without saying the server is unreachable:\n%s", text)
				}
			default:
				t.Fatalf("copy across the restart: exit %d (%v)\n%s", code, err, text)
			}
			// The re-run with the same ledger completes.
			rerun, err := copyCmd().CombinedOutput()
			if err != nil && !(cmdExit(err) == 3 && strings.Contains(string(rerun), " 0 failed")) {
				t.Fatalf("re-run: %v\n%s", err, rerun)
			}
			if failedLine.Match(rerun) {
				t.Fatalf("re-run with FAILED lines:\n%s", rerun)
			}
			read := strings.Replace(dst, "?", "?deleted=true&", 1)
			b, err := exec.Command(bin, "check", "parquet:"+arch, read).CombinedOutput()
			if err != nil {
				t.Fatalf("runferry check: %v\n%s", err, b)
			}
			t.Logf("re-run: %s; check: %s", lastLine(string(rerun)), strings.TrimSpace(string(b)))
			_, readBack, _ := pairWithPrefix(t, srv.URL, prefix)
			expectSame(t, want, readBack())
		})
	}
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	return s[strings.LastIndexByte(s, '\n')+1:]
}
