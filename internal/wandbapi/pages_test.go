package wandbapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/runferry/runferry/internal/fault"
)

// TestRunPagesFollowCursors: a run's files, logged artifacts and console
// lines (the three connections of one run, read by one pager) are followed
// page by page from the cursors a server answers, null nodes left out; a
// server that answers the cursor it was asked with is a permanent error
// naming the run and the connection, not a loop; a null connection is
// none. The server is a fake: it injects the faults.
func TestRunPagesFollowCursors(t *testing.T) {
	for _, tc := range []struct {
		name, field, node string
		read              func(c readers) ([]string, error)
	}{
		{"files", "files", `{"name":"f%d"}`, func(c readers) ([]string, error) { return c.files() }},
		{"logged artifacts", "artifacts", `{"id":"a%d"}`, func(c readers) ([]string, error) { return c.logged() }},
		{"console log", "logLines", `{"line":"l%d"}`, func(c readers) ([]string, error) { return c.lines() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, mode := range []string{"pages", "repeat", "null"} {
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					var body struct {
						Variables map[string]any `json:"variables"`
					}
					json.NewDecoder(r.Body).Decode(&body)
					cursor, _ := body.Variables["cursor"].(string)
					if tc.field == "logLines" {
						cursor, _ = body.Variables["after"].(string)
					}
					page := map[string]string{"": "1", "1": "2", "2": ""}[cursor]
					if mode == "repeat" && cursor == "1" {
						page = "1"
					}
					conn := "null"
					if mode != "null" {
						n := map[string]int{"": 0, "1": 1, "2": 2}[cursor]
						edges := []string{`{"node":` + fmt.Sprintf(tc.node, 2*n) + `}`, `{"node":null}`, `{"node":` + fmt.Sprintf(tc.node, 2*n+1) + `}`}
						next := "false"
						if page != "" {
							next = "true"
						}
						conn = fmt.Sprintf(`{"pageInfo":{"endCursor":%q,"hasNextPage":%s},"edges":[%s]}`, page, next, strings.Join(edges, ","))
					}
					w.Header().Set("Content-Type", "application/json")
					fmt.Fprintf(w, `{"data":{"project":{"run":{"logLineCount":6,%q:%s}}}}`, tc.field, conn)
				}))
				defer srv.Close()
				got, err := tc.read(readers{t: t, url: srv.URL})
				switch mode {
				case "pages":
					if err != nil || strings.Join(got, " ") != "0 1 2 3 4 5" {
						t.Fatalf("%s: got %v, %v", mode, got, err)
					}
				case "repeat":
					if fault.KindOf(err) != fault.KindPermanent || !strings.Contains(err.Error(), "acme/p/r1 "+tc.name+`: the server repeats cursor "1"`) {
						t.Fatalf("%s: got %v, %v", mode, got, err)
					}
				case "null":
					if err != nil || len(got) != 0 {
						t.Fatalf("%s: got %v, %v", mode, got, err)
					}
				}
			}
		})
	}
}

// readers reads one run's connections from a server, as numbers.
type readers struct {
	t   *testing.T
	url string
}

func (r readers) files() (out []string, err error) {
	for f, err := range client(r.t, r.url, key).RunFiles(context.Background(), "acme", "p", "r1") {
		if err != nil {
			return out, err
		}
		out = append(out, strings.TrimPrefix(f.Name, "f"))
	}
	return out, nil
}

func (r readers) logged() (out []string, err error) {
	for a, err := range client(r.t, r.url, key).RunArtifacts(context.Background(), "acme", "p", "r1", false) {
		if err != nil {
			return out, err
		}
		out = append(out, strings.TrimPrefix(a.ID, "a"))
	}
	return out, nil
}

func (r readers) lines() (out []string, err error) {
	for page, err := range client(r.t, r.url, key).LogLines(context.Background(), "acme", "p", "r1") {
		if err != nil {
			return out, err
		}
		for _, l := range page {
			out = append(out, strings.TrimPrefix(l.Line, "l"))
		}
	}
	return out, nil
}
