package main

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/runferry/runferry/internal/testenv"
)

// exampleRun runs an example's runferry command line with its remote source
// and its paths replaced by the W&B fixtures and a temporary folder, twice:
// the first run copies every run, the second (same ledger) copies none.
func exampleRun(t *testing.T, args []string, src string, paths map[string]string) {
	t.Helper()
	var local []string
	for _, a := range args {
		if a == src {
			a = fixtures
		}
		for from, to := range paths {
			a = strings.Replace(a, from, to, 1)
		}
		local = append(local, a)
	}
	// The fixtures' run fxa00001 names a file whose content is gone: accepted
	// here, where the example's command line is the subject.
	local = append(local, "--accept-gaps")
	// The text summary or, with --log-format json, its JSON form.
	for i, want := range []*regexp.Regexp{regexp.MustCompile(`copied 6 runs|"committed":6,`), regexp.MustCompile(`6 unchanged|"unchanged":6,`)} {
		code, out, errOut := runCLI(t, local...)
		if code != 0 || !want.MatchString(out) {
			t.Fatalf("run %d of %q: exit %d, want %q\n%s%s", i+1, local, code, want, out, errOut)
		}
	}
}

// TestKubernetesCronJobExample parses docs/examples/runferry-backup.cronjob.yaml
// (with PyYAML, an independent parser), checks what a CronJob needs and what
// the backup relies on, and runs its command line against a local source.
func TestKubernetesCronJobExample(t *testing.T) {
	file := filepath.Join(testenv.RepoRoot(t), "docs", "examples", "runferry-backup.cronjob.yaml")
	out, err := exec.Command(testenv.Python(t), "-c", "import json, sys, yaml; json.dump(yaml.safe_load(open(sys.argv[1])), sys.stdout)", file).Output()
	if err != nil {
		t.Fatalf("parsing %s: %v", file, err)
	}
	var cj struct {
		APIVersion, Kind string
		Spec             struct {
			Schedule          string
			ConcurrencyPolicy string
			JobTemplate       struct {
				Spec struct {
					Template struct {
						Spec struct {
							Containers []struct {
								Image string
								Args  []string
								Env   []struct {
									Name      string
									Value     string
									ValueFrom *struct{ SecretKeyRef *struct{ Name, Key string } }
								}
								VolumeMounts []struct{ MountPath string }
							}
						}
					}
				}
			}
		}
	}
	if err := json.Unmarshal(out, &cj); err != nil {
		t.Fatal(err)
	}
	if cj.APIVersion != "batch/v1" || cj.Kind != "CronJob" || cj.Spec.ConcurrencyPolicy != "Forbid" ||
		!regexp.MustCompile(`^(\S+\s+){4}\S+$`).MatchString(cj.Spec.Schedule) {
		t.Fatalf("not a one-writer CronJob with a 5-field schedule: %+v", cj)
	}
	cs := cj.Spec.JobTemplate.Spec.Template.Spec.Containers
	if len(cs) != 1 || len(cs[0].Args) < 3 || cs[0].Args[0] != "sync" {
		t.Fatalf("containers %+v", cs)
	}
	for _, e := range cs[0].Env {
		if e.Name == "MLFLOW_TRACKING_TOKEN" && (e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil) {
			t.Errorf("the token must come from a Secret: %+v", e)
		}
	}
	if len(cs[0].VolumeMounts) != 1 {
		t.Fatalf("mounts %+v", cs[0].VolumeMounts)
	}
	exampleRun(t, cs[0].Args, cs[0].Args[1], map[string]string{cs[0].VolumeMounts[0].MountPath: t.TempDir()})
}

// TestSystemdTimerExample parses docs/examples/runferry-backup.{service,timer}
// and runs the service's ExecStart against a local source.
func TestSystemdTimerExample(t *testing.T) {
	dir := filepath.Join(testenv.RepoRoot(t), "docs", "examples")
	service, timer := parseUnit(t, filepath.Join(dir, "runferry-backup.service")), parseUnit(t, filepath.Join(dir, "runferry-backup.timer"))
	if service["Service"]["Type"] != "oneshot" || service["Service"]["EnvironmentFile"] == "" {
		t.Errorf("service: %v", service)
	}
	if timer["Timer"]["OnCalendar"] == "" || timer["Install"]["WantedBy"] != "timers.target" {
		t.Errorf("timer: %v", timer)
	}
	exec := strings.Fields(service["Service"]["ExecStart"])
	if len(exec) < 4 || !filepath.IsAbs(exec[0]) || filepath.Base(exec[0]) != "runferry" || exec[1] != "sync" {
		t.Fatalf("ExecStart %q", exec)
	}
	tmp := t.TempDir()
	paths := map[string]string{"/srv/backups": tmp, "/var/lib/runferry": tmp, "/var/log/runferry": tmp}
	for _, p := range strings.Fields(service["Service"]["ReadWritePaths"]) {
		if !strings.Contains(service["Service"]["ExecStart"], p) {
			t.Errorf("ReadWritePaths %s is not the archive ExecStart writes", p)
		}
	}
	exampleRun(t, exec[1:], exec[2], paths)
}

// parseUnit reads a systemd unit file into section -> key -> value.
func parseUnit(t *testing.T, path string) map[string]map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]map[string]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			out[section] = map[string]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s:%d: not key=value in a section: %q", path, n, line)
			}
			out[section][strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return out
}
