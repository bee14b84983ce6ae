package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/runferry/runferry/schema"
)

// fieldKinds says what type each field needs; fields absent are text.
var fieldKinds = map[string]string{
	"step": "integer", "size": "integer", "created": "time", "start": "time", "end": "time", "time": "time",
}

// fieldKind returns the type field of entry needs: "number", "integer",
// "time" or "" (text).
func fieldKind(entry, field string) string {
	if entry == "metrics" && field == "value" {
		return "number"
	}
	return fieldKinds[field]
}

// textTypes are database type names that hold text, not numbers.
var textTypes = []string{"TEXT", "VARCHAR", "CHAR", "BPCHAR", "NVARCHAR", "NCHAR", "CLOB", "JSON", "JSONB", "UUID", "BYTEA", "BLOB", "LONGTEXT", "MEDIUMTEXT", "TINYTEXT"}

// Check validates the mapping against the live database: every query runs
// (limited to one row), every mapped column is in its result with a type
// that fits its field, and the row read converts. Queries that take
// :experiment or :run get the id of the first experiment or run found.
// It returns one line per problem, naming the entry, the column and the
// type found; none means the mapping is usable.
func (r *Mapped) Check(ctx context.Context) []string {
	var problems []string
	var expID, runID any
	for _, n := range r.m.entries {
		var arg any
		switch n.param {
		case "experiment":
			arg = expID
		case "run":
			arg = runID
		}
		first, err := r.checkEntry(ctx, n, arg)
		problems = append(problems, err...)
		switch n.name {
		case "experiments":
			expID = first
		case "runs":
			runID = first
		}
	}
	return problems
}

// checkEntry checks one entry and returns the id of its first row (for
// experiments and runs).
func (r *Mapped) checkEntry(ctx context.Context, n named, arg any) (first any, problems []string) {
	bad := func(format string, args ...any) {
		problems = append(problems, fmt.Sprintf(n.name+": "+format, args...))
	}
	q, k := r.s.Dialect.bind(n.e.Query)
	q = "SELECT * FROM (" + strings.TrimRight(strings.TrimSpace(q), ";") + ") runferry_check LIMIT 1"
	args := make([]any, k)
	for i := range args {
		args[i] = arg
	}
	if arg == nil && n.param != "" {
		for i := range args {
			args[i] = "" // no experiment or run to try it with: the columns are still checked
		}
	}
	rows, err := r.s.DB.QueryContext(ctx, q, args...)
	if err != nil {
		bad("the query fails: %v", err)
		return nil, problems
	}
	defer rows.Close()
	types, err := rows.ColumnTypes()
	if err != nil {
		bad("%v", err)
		return nil, problems
	}
	byName := map[string]string{}
	var names []string
	for _, t := range types {
		typ, _, _ := strings.Cut(strings.ToUpper(t.DatabaseTypeName()), "(") // VARCHAR(200) -> VARCHAR
		byName[strings.ToLower(t.Name())] = strings.TrimSpace(typ)
		names = append(names, t.Name())
	}
	for _, field := range append(append([]string(nil), n.need...), n.may...) {
		col, ok := n.e.Columns[field]
		if !ok {
			continue
		}
		typ, ok := byName[strings.ToLower(col)]
		if !ok {
			bad("columns.%s: column %q is not in the query's result (it returns %s)", field, col, strings.Join(names, ", "))
			continue
		}
		switch kind := fieldKind(n.name, field); {
		case (kind == "number" || kind == "integer") && isTextType(typ):
			bad("columns.%s: column %q has type %s, a number is required", field, col, typ)
		case kind == "time" && (typ == "BOOL" || typ == "BOOLEAN" || typ == "BYTEA" || typ == "BLOB"):
			bad("columns.%s: column %q has type %s, a time (timestamp, epoch seconds or milliseconds, or text) is required", field, col, typ)
		}
	}
	if len(problems) > 0 {
		return nil, problems
	}
	_ = rows.Close()
	err = r.query(ctx, n.name, n.e, args0(args), func(w row) error {
		for _, field := range append(append([]string(nil), n.need...), n.may...) {
			if _, ok := n.e.Columns[field]; !ok {
				continue
			}
			var err error
			switch fieldKind(n.name, field) {
			case "number":
				_, err = w.number(field)
			case "integer":
				_, err = w.integer(field)
			case "time":
				_, err = w.when(field, n.e.Time)
			default:
				_, err = w.text(field, field == "id" || field == "key" || field == "path" || field == "location" || field == "line" ||
					field == "cursor" || field == "name" && n.name == "experiments")
			}
			if err != nil {
				problems = append(problems, strings.TrimPrefix(err.Error(), ErrMapping.Error()+": "))
			}
		}
		if n.name == "runs" {
			if _, err := r.run(w, r.ExpRef("")); err != nil && !errors.Is(err, context.Canceled) {
				problems = append(problems, strings.TrimPrefix(err.Error(), ErrMapping.Error()+": "))
			}
		}
		if n.name == "rich_values" {
			if _, err := r.richValue(w, fmt.Sprint(arg)); err != nil {
				problems = append(problems, strings.TrimPrefix(err.Error(), ErrMapping.Error()+": "))
			}
		}
		if n.name == "artifacts" {
			p, _ := w.text("path", false)
			if loc, err := w.text("location", false); err == nil && loc != "" {
				a := schema.Artifact{Path: p, Size: -1}
				r.locate(&a, loc)
				if a.Problem != "" {
					problems = append(problems, fmt.Sprintf("artifacts: file %s: %s", p, a.Problem))
				}
			}
		}
		if first == nil {
			first, _ = w.raw("id")
		}
		return errStopCheck
	})
	if err != nil && !errors.Is(err, errStopCheck) {
		problems = append(problems, err.Error())
	}
	return first, dedupe(problems)
}

var errStopCheck = errors.New("one row checked")

func args0(args []any) any {
	if len(args) == 0 {
		return nil
	}
	return args[0]
}

func isTextType(t string) bool {
	for _, x := range textTypes {
		if t == x {
			return true
		}
	}
	return false
}

func dedupe(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
