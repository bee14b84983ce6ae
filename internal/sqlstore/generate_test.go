package sqlstore

import (
	"strings"
	"testing"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// FuzzYAMLScalar: every string the generator writes into a mapping (a
// table or column name, a query, a status value) reads back unchanged.
func FuzzYAMLScalar(f *testing.F) {
	for _, s := range []string{"runs", "SELECT a, b FROM t WHERE run_id = :run ORDER BY a", "yes", "a: b", "x #y", "", " lead", "tab\there", "new\nline", `q"uote`, "back\\slash", "null", "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) || strings.ContainsRune(s, '\uFEFF') {
			return // names and values come from the database as text
		}
		var got struct{ K string }
		if err := yaml.Unmarshal([]byte("k: "+yamlScalar(s)+"\n"), &got); err != nil {
			t.Fatalf("%q written as %s: %v", s, yamlScalar(s), err)
		}
		if got.K != s {
			t.Fatalf("%q written as %s reads back as %q", s, yamlScalar(s), got.K)
		}
	})
}
