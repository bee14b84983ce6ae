package main

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/runferry/runferry/internal/location"
	sinksall "github.com/runferry/runferry/sinks/all"
	sourcesall "github.com/runferry/runferry/sources/all"
)

// TestREADMENamesEverySecretVariable: README's "Environment" lists the
// variables whose values are scrubbed from all output ("today `A`, `B`
// ... are scrubbed") and has a table row for each; both must be exactly
// the variables an adapter declares secret, the list runferry scrubs
// (location.SecretEnvVars, shown by `runferry backends` as "[secret: ...]").
// Before, README named MLFLOW_TRACKING_TOKEN and MLFLOW_TRACKING_PASSWORD
// only, while PGPASSWORD, MYSQL_PWD and WANDB_API_KEY are scrubbed too.
func TestREADMENamesEverySecretVariable(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, env, ok := strings.Cut(string(readme), "\n## Environment\n")
	if !ok {
		t.Fatal(`README has no "## Environment" section`)
	}
	env, _, _ = strings.Cut(env, "\n## ")
	want := location.SecretEnvVars(append(sourcesall.Sources().All(), sinksall.Sinks().All()...))
	if len(want) < 5 {
		t.Fatalf("only %d secret variables declared: %v", len(want), want)
	}
	// The sentence: "... (`runferry backends` marks them `[secret: ...]`;
	// today `A`, `B` and `C`) are scrubbed from all output".
	m := regexp.MustCompile(`(?s); today (.*?)\) are scrubbed from all output`).FindStringSubmatch(env)
	if m == nil {
		t.Fatalf("README's Environment section does not list the scrubbed variables (\"; today ...) are scrubbed from all output\"):\n%s", env)
	}
	var listed []string
	for _, v := range regexp.MustCompile("`([A-Z_]+)`").FindAllStringSubmatch(m[1], -1) {
		listed = append(listed, v[1])
	}
	slices.Sort(listed)
	if !slices.Equal(listed, want) {
		t.Errorf("README lists as scrubbed %v; the adapters declare secret %v", listed, want)
	}
	// Every secret variable has its row, which says it is secret.
	for _, v := range want {
		var row string
		for _, l := range strings.Split(env, "\n") {
			if strings.HasPrefix(l, "| ") && strings.Contains(strings.SplitN(l, "|", 3)[1], "`"+v+"`") {
				row = l
			}
		}
		if !strings.Contains(row, "secret") {
			t.Errorf("README's Environment table has no row saying %s is secret (row %q)", v, row)
		}
	}
}
