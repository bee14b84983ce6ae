package wandbtest

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestFilterRuns: the filters the server knows select what W&B's
// MongoDB-like filters mean; any other field or operator is an error
// naming it, never ignored.
func TestFilterRuns(t *testing.T) {
	t0 := time.Date(2024, 1, 1, 12, 0, 0, 0, time.UTC)
	var runs []*Run
	for i, id := range []string{"a", "b", "c"} {
		runs = append(runs, &Run{ID: id, State: "finished", CreatedAt: t0.Add(time.Duration(i) * time.Hour)})
	}
	runs[2].State = "running"
	for f, want := range map[string]string{
		``:                                   "[a b c]",
		`{}`:                                 "[a b c]",
		`{"name": {"$in": ["c", "a", "x"]}}`: "[a c]",
		`{"name": "b"}`:                      "[b]",
		`{"name": {"$nin": ["b"]}, "state": "finished"}`:                                           "[a]",
		`{"createdAt": {"$gte": "2024-01-01T13:00:00Z"}}`:                                          "[b c]",
		`{"createdAt": {"$lt": "2024-01-01T13:00:00"}}`:                                            "[a]",
		`{"$and": [{"name": {"$in": ["a","b"]}}, {"createdAt": {"$gt": "2024-01-01T12:00:00Z"}}]}`: "[b]",
		`{"$or": [{"name": "a"}, {"state": {"$eq": "running"}}]}`:                                  "[a c]",
	} {
		got, err := filterRuns(runs, f)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		var ids []string
		for _, r := range got {
			ids = append(ids, r.ID)
		}
		if fmt.Sprint(ids) != want {
			t.Errorf("%s: got %v, want %s", f, ids, want)
		}
	}
	for f, name := range map[string]string{
		`{"config.lr": 1}`:                 "config.lr",
		`{"name": {"$regex": "a"}}`:        "$regex",
		`{"createdAt": {"$gte": "today"}}`: "today",
		`[1]`:                              "filters",
	} {
		if _, err := filterRuns(runs, f); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: error %v, want one naming %s", f, err, name)
		}
	}
}
