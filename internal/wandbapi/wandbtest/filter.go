package wandbtest

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// filterRuns returns the runs matching W&B's MongoDB-like run filter f (a
// JSON object; "" and "{}" match all), in their order. It knows the
// operators $and, $or, $eq, $ne, $in, $nin, $gt, $gte, $lt, $lte and a bare
// value (equality) on the fields name, displayName, state and createdAt
// (compared as times: ISO 8601 with or without a zone, UTC when without);
// anything else is an error naming it.
func filterRuns(runs []*Run, f string) ([]*Run, error) {
	if strings.TrimSpace(f) == "" {
		return runs, nil
	}
	var q map[string]any
	if err := json.Unmarshal([]byte(f), &q); err != nil {
		return nil, fmt.Errorf("filters: %v", err)
	}
	var out []*Run
	for _, r := range runs {
		ok, err := matchRun(r, q)
		if err != nil {
			return nil, fmt.Errorf("filters: %v", err)
		}
		if ok {
			out = append(out, r)
		}
	}
	return out, nil
}

func matchRun(r *Run, q map[string]any) (bool, error) {
	for k, cond := range q {
		var ok bool
		var err error
		switch k {
		case "$and", "$or":
			l, isList := cond.([]any)
			if !isList {
				return false, fmt.Errorf("%s wants a list", k)
			}
			ok = k == "$and"
			for _, sub := range l {
				m, isMap := sub.(map[string]any)
				if !isMap {
					return false, fmt.Errorf("%s wants objects", k)
				}
				hit, err := matchRun(r, m)
				if err != nil {
					return false, err
				}
				if k == "$and" {
					ok = ok && hit
				} else {
					ok = ok || hit
				}
			}
		case "name", "displayName", "state", "createdAt":
			ok, err = matchField(r, k, cond)
		default:
			return false, fmt.Errorf("field or operator %q is not supported by the test server", k)
		}
		if err != nil || !ok {
			return false, err
		}
	}
	return true, nil
}

// matchField compares one field with a condition: a bare value or an
// object of operators.
func matchField(r *Run, field string, cond any) (bool, error) {
	var have string
	switch field {
	case "name":
		have = r.ID
	case "displayName":
		have = r.DisplayName
	case "state":
		have = r.State
	case "createdAt":
		have = r.CreatedAt.UTC().Format(time.RFC3339Nano)
	}
	cmp := func(v any) (int, error) {
		s, ok := v.(string)
		if !ok {
			return 0, fmt.Errorf("%s: want a string, got %v", field, v)
		}
		if field != "createdAt" {
			return strings.Compare(have, s), nil
		}
		t, err := parseFilterTime(s)
		if err != nil {
			return 0, fmt.Errorf("createdAt: %v", err)
		}
		return r.CreatedAt.Compare(t), nil
	}
	ops, isOps := cond.(map[string]any)
	if !isOps {
		c, err := cmp(cond)
		return c == 0, err
	}
	for op, v := range ops {
		var ok bool
		switch op {
		case "$in", "$nin":
			l, isList := v.([]any)
			if !isList {
				return false, fmt.Errorf("%s %s wants a list", field, op)
			}
			in := slices.ContainsFunc(l, func(e any) bool { c, err := cmp(e); return err == nil && c == 0 })
			ok = in == (op == "$in")
		case "$eq", "$ne", "$gt", "$gte", "$lt", "$lte":
			c, err := cmp(v)
			if err != nil {
				return false, err
			}
			ok = map[string]bool{"$eq": c == 0, "$ne": c != 0, "$gt": c > 0, "$gte": c >= 0, "$lt": c < 0, "$lte": c <= 0}[op]
		default:
			return false, fmt.Errorf("operator %q on %s is not supported by the test server", op, field)
		}
		if !ok {
			return false, nil
		}
	}
	return true, nil
}

func parseFilterTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02T15:04:05"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not an ISO 8601 time", s)
}
