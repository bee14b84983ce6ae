package wandbtest_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/runferry/runferry/internal/wandbapi/wandbtest"
)

func post(t *testing.T, url, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", url+"/graphql", bytes.NewBufferString(body))
	req.SetBasicAuth("api", Key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestQueryLanguage: aliases, fragments, inline fragments, variables with
// defaults and cursor paging are answered; an unknown field is an error
// naming it, never an empty answer.
func TestQueryLanguage(t *testing.T) {
	srv := wandbtest.New(fixtures(t), Key)
	defer srv.Close()
	q := `query Q($e: String, $first: Int = 4, $after: String) {
  # a comment
  me: viewer { ...U }
  models(entityName: $e, first: 1) { edges { node { name } } }
  project(name: "runferry-fixtures", entityName: $e) {
    runs(first: $first, after: $after) { edges { cursor node { ... on Run { name } } } pageInfo { endCursor hasNextPage } }
  }
}
fragment U on User { username __typename }`
	body, _ := json.Marshal(map[string]any{"query": q, "variables": map[string]any{"e": "acme", "after": "2"}})
	code, out := post(t, srv.URL, string(body))
	want := `{"data":{"me":{"__typename":"User","username":"tester"},"models":{"edges":[{"node":{"name":"runferry-fixtures"}}]},` +
		`"project":{"runs":{"edges":[{"cursor":"3","node":{"name":"fxc00003"}},{"cursor":"4","node":{"name":"fxd00004"}},` +
		`{"cursor":"5","node":{"name":"fxe00005"}},{"cursor":"6","node":{"name":"fxf00006"}}],"pageInfo":{"endCursor":"6","hasNextPage":false}}}}}`
	if code != 200 || out != want {
		t.Fatalf("%d %s\nwant %s", code, out, want)
	}
	_, out = post(t, srv.URL, `{"query":"{ viewer { username nosuchField } }"}`)
	if !strings.Contains(out, `field \"nosuchField\" is not known on type User`) {
		t.Fatalf("unknown field: %s", out)
	}
}
