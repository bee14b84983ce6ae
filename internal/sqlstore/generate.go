package sqlstore

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// table is a table of the user's database with its columns in order.
type table struct {
	name string
	cols []column
}

type column struct{ name, typ string }

// pick returns the first of names (compared without case) that is a
// column of t, or "".
func (t table) pick(names ...string) string {
	for _, n := range names {
		for _, c := range t.cols {
			if strings.EqualFold(c.name, n) {
				return c.name
			}
		}
	}
	return ""
}

func (t table) typeOf(col string) string {
	for _, c := range t.cols {
		if c.name == col {
			typ, _, _ := strings.Cut(strings.ToUpper(c.typ), "(")
			return strings.TrimSpace(typ)
		}
	}
	return ""
}

// numericTypes are column types holding numbers: a time column of one
// holds epoch seconds or milliseconds.
var numericTypes = []string{"INT", "INTEGER", "BIGINT", "SMALLINT", "TINYINT", "MEDIUMINT", "NUMERIC", "DECIMAL",
	"REAL", "DOUBLE", "DOUBLE PRECISION", "FLOAT", "INT4", "INT8", "FLOAT8", "BIGINT UNSIGNED", "INT UNSIGNED"}

// tables lists the user's tables with their columns, from
// information_schema (PostgreSQL: the current schema; MySQL: the current
// database) or SQLite's catalogue, sorted by name.
func (s *Store) tables(ctx context.Context) ([]table, error) {
	var q string
	switch s.Dialect.Name {
	case "postgres":
		q = `SELECT table_name, column_name, data_type FROM information_schema.columns
			WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position`
	case "mysql":
		q = `SELECT table_name, column_name, column_type FROM information_schema.columns
			WHERE table_schema = DATABASE() ORDER BY table_name, ordinal_position`
	default:
		q = `SELECT m.name, p.name, p.type FROM sqlite_master m JOIN pragma_table_info(m.name) p
			WHERE m.type IN ('table', 'view') AND m.name NOT LIKE 'sqlite_%' ORDER BY m.name, p.cid`
	}
	rows, err := s.DB.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("listing tables: %w", err)
	}
	defer rows.Close()
	var out []table
	for rows.Next() {
		var t, c, typ string
		if err := rows.Scan(&t, &c, &typ); err != nil {
			return nil, err
		}
		if len(out) == 0 || out[len(out)-1].name != t {
			out = append(out, table{name: t})
		}
		out[len(out)-1].cols = append(out[len(out)-1].cols, column{c, typ})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, rows.Err()
}

var simpleIdent = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// sqlReserved are words a generated query must quote as identifiers.
var sqlReserved = map[string]bool{"user": true, "order": true, "group": true, "key": true, "end": true, "desc": true,
	"select": true, "from": true, "where": true, "table": true, "column": true, "index": true, "check": true, "default": true}

// ident quotes name for the dialect when it is not a plain lower-case
// word.
func (d Dialect) ident(name string) string {
	if simpleIdent.MatchString(name) && !sqlReserved[name] {
		return name
	}
	if d.Name == "mysql" {
		return "`" + strings.ReplaceAll(name, "`", "``") + "`"
	}
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

// genEntry is one entry of a generated mapping.
type genEntry struct {
	name    string
	table   table
	fields  [][2]string // field, column, in the order written
	where   string      // the condition with the entry's parameter
	order   []string    // ORDER BY columns
	timeEnc string
	status  [][2]string // value, runferry status ("" when unknown)
}

func (g *genEntry) add(field, col string) {
	if col != "" {
		g.fields = append(g.fields, [2]string{field, col})
	}
}

func (g *genEntry) has(field string) bool {
	for _, f := range g.fields {
		if f[0] == field {
			return true
		}
	}
	return false
}

// timeFields are the fields holding times.
var timeFields = map[string]bool{"created": true, "start": true, "end": true, "time": true}

// guessStatus maps a status value to runferry's by its words, or "".
func guessStatus(v string) string {
	l := strings.ToLower(v)
	for _, k := range []struct {
		words  []string
		status string
	}{
		{[]string{"fail", "crash", "error", "exception"}, "FAILED"},
		{[]string{"kill", "stop", "cancel", "abort", "interrupt", "terminat"}, "KILLED"},
		{[]string{"finish", "done", "success", "succeed", "complete", "ok", "end"}, "FINISHED"},
		{[]string{"run", "active", "progress", "start", "pending", "queue", "wait", "live"}, "RUNNING"},
	} {
		for _, w := range k.words {
			if strings.Contains(l, w) {
				return k.status
			}
		}
	}
	return ""
}

// Generate writes a starting mapping for the user's database from its
// catalogue (information_schema, or SQLite's): it finds the runs table
// (runs, run, or a name ending in _runs), an experiments (or projects)
// table the runs point to, and the tables holding a run id column, which
// it takes for params, tags, metrics, logs or artifacts by their names;
// then it picks each field's column by common names, reads the distinct
// status values to map them, and marks numeric time columns time: auto.
// What it could not decide is listed in notes (and as comments in the
// file). The mapping returned parses; `mapping check` tells whether it
// reads the data.
func (s *Store) Generate(ctx context.Context) (mapping string, notes []string, err error) {
	tables, err := s.tables(ctx)
	if err != nil {
		return "", nil, err
	}
	d := s.Dialect
	find := func(exact []string, suffixes ...string) (table, bool) {
		for _, n := range exact {
			for _, t := range tables {
				if strings.EqualFold(t.name, n) {
					return t, true
				}
			}
		}
		for _, t := range tables {
			for _, suf := range suffixes {
				if strings.HasSuffix(strings.ToLower(t.name), suf) {
					return t, true
				}
			}
		}
		return table{}, false
	}
	runsT, ok := find([]string{"runs", "run", "training_runs", "experiment_runs"}, "_runs")
	if !ok {
		var names []string
		for _, t := range tables {
			names = append(names, t.name)
		}
		return "", nil, fmt.Errorf("no runs table found among %s (looked for runs, run, or a name ending in _runs): write the mapping by hand (docs/SQL-MAPPING.md)", strings.Join(names, ", "))
	}
	used := map[string]bool{runsT.name: true}
	runs := &genEntry{name: "runs", table: runsT}
	singular := strings.TrimSuffix(strings.ToLower(runsT.name), "s")
	runID := runsT.pick("id", "run_id", "run_uuid", "uuid", singular+"_id")
	if runID == "" {
		return "", nil, fmt.Errorf("table %s: no id column (id, run_id, run_uuid, uuid)", runsT.name)
	}
	runs.add("id", runID)

	var exps *genEntry
	if et, ok := find([]string{"experiments", "experiment", "projects", "project"}); ok {
		link := runsT.pick("experiment_id", "exp_id", "project_id", strings.TrimSuffix(strings.ToLower(et.name), "s")+"_id")
		eid, ename := et.pick("id", "experiment_id", "project_id"), et.pick("name", "title", "experiment_name", "project_name")
		if link != "" && eid != "" && ename != "" {
			used[et.name] = true
			exps = &genEntry{name: "experiments", table: et}
			exps.add("id", eid)
			exps.add("name", ename)
			exps.add("description", et.pick("description", "notes"))
			exps.add("created", et.pick("created_at", "created", "creation_time", "created_time"))
			runs.where = d.ident(link) + " = :experiment"
			runs.add("experiment", link)
		} else {
			notes = append(notes, fmt.Sprintf("table %s looks like experiments, but has no id and name column, or %s no column pointing to it: every run goes into one experiment", et.name, runsT.name))
		}
	}
	runs.add("name", runsT.pick("name", "run_name", "title", "display_name"))
	runs.add("status", runsT.pick("status", "state", "run_status"))
	runs.add("start", runsT.pick("started_at", "start_time", "start_ts", "started", "start", "created_at", "created"))
	runs.add("end", runsT.pick("finished_at", "ended_at", "end_time", "end_ts", "completed_at", "finished", "ended", "end"))
	runs.add("user", runsT.pick("user_name", "username", "user", "owner", "created_by"))
	runs.add("notes", runsT.pick("notes", "description", "comment"))
	runs.add("config", runsT.pick("config", "hparams", "hyperparameters", "params_json", "configuration"))
	runs.add("summary", runsT.pick("summary", "results", "final_metrics"))
	runs.add("parent", runsT.pick("parent_id", "parent_run_id", "parent"))
	runs.add("host", runsT.pick("host", "hostname", "machine"))
	runs.add("git_commit", runsT.pick("git_commit", "git_sha", "commit", "commit_sha"))
	runs.add("cursor", runsT.pick("updated_at", "modified_at", "last_updated", "last_modified", "updated", "changed_at", "row_version"))
	if !runs.has("cursor") {
		notes = append(notes, fmt.Sprintf("runs: no cursor column (updated_at, modified_at, ...) in %s: sync reads every run each time", runsT.name))
	}
	if col := runs.column("status"); col != "" {
		vals, err := s.distinct(ctx, runsT.name, col)
		if err != nil {
			return "", nil, err
		}
		for _, v := range vals {
			st := guessStatus(v)
			runs.status = append(runs.status, [2]string{v, st})
			if st == "" {
				notes = append(notes, fmt.Sprintf("runs: status %q: cannot tell which of RUNNING, FINISHED, FAILED or KILLED it is: edit the status entry", v))
			}
		}
	}

	// Tables with a column pointing to runs, by what their names say.
	kinds := []struct {
		kind  string
		words []string
	}{
		{"metrics", []string{"metric", "history", "scalar", "measure"}},
		{"params", []string{"param", "hparam", "hyper", "config"}},
		{"tags", []string{"tag", "label"}},
		{"logs", []string{"log", "console", "stdout"}},
		{"artifacts", []string{"artifact", "file", "asset", "output_file"}},
		{"rich_values", []string{"media", "image", "rich", "histogram"}},
	}
	children := map[string]*genEntry{}
	for _, t := range tables {
		if used[t.name] {
			continue
		}
		link := t.pick("run_id", "run_uuid", singular+"_id")
		if link == "" {
			continue
		}
		for _, k := range kinds {
			if children[k.kind] != nil || !slices.ContainsFunc(k.words, func(w string) bool { return strings.Contains(strings.ToLower(t.name), w) }) {
				continue
			}
			g := &genEntry{name: k.kind, table: t, where: d.ident(link) + " = :run"}
			one := strings.TrimSuffix(k.kind, "s") // metric, param, tag, log, artifact, rich_value
			keyCols := []string{"key", "name", one, one + "_name", "tag"}
			switch k.kind {
			case "metrics":
				g.add("key", t.pick(append(keyCols, "metric_key")...))
				g.add("value", t.pick("value", "val", "metric_value", "scalar"))
				g.add("step", t.pick("step", "global_step", "iteration", "iter", "epoch"))
				g.add("time", t.pick("timestamp", "time", "logged_at", "created_at", "ts", "wall_time", "recorded_at"))
				g.order = []string{g.column("key")}
				if s := g.column("step"); s != "" {
					g.order = append(g.order, s)
				}
			case "params", "tags":
				g.add("key", t.pick(keyCols...))
				g.add("value", t.pick("value", "val", one+"_value"))
				g.order = []string{g.column("key")}
			case "logs":
				g.add("line", t.pick("line", "message", "msg", "text", "content", "output"))
				g.add("stream", t.pick("stream", "fd", "channel"))
				g.add("time", t.pick("timestamp", "time", "logged_at", "created_at", "ts"))
				if o := t.pick("seq", "line_no", "lineno", "line_number", "id"); o != "" {
					g.order = []string{o}
				} else if tc := g.column("time"); tc != "" {
					g.order = []string{tc}
				}
			case "artifacts":
				g.add("path", t.pick("path", "name", "file_name", "filename", "artifact_path", "relative_path"))
				g.add("location", t.pick("uri", "url", "location", "storage_path", "file_path", "full_path", "path"))
				g.add("size", t.pick("size", "size_bytes", "bytes", "file_size"))
				g.add("sha256", t.pick("sha256", "sha256sum"))
			case "rich_values":
				g.add("key", t.pick(keyCols...))
				g.add("step", t.pick("step", "global_step", "iteration", "iter", "epoch"))
				g.add("file", t.pick("path", "file", "file_path", "image_path", "filename"))
				g.add("value", t.pick("value", "data", "json", "value_json", "payload"))
				g.add("text", t.pick("text", "caption"))
				g.add("type", t.pick("type", "value_type", "media_type"))
				g.add("time", t.pick("timestamp", "time", "logged_at", "created_at", "ts", "wall_time", "recorded_at"))
				if s := g.column("step"); s != "" {
					g.order = []string{s}
				}
				if o := t.pick("seq", "id"); o != "" {
					g.order = append(g.order, o)
				} else if key := g.column("key"); key != "" {
					g.order = append(g.order, key)
				}
			}
			if missing := g.missing(); len(missing) > 0 {
				notes = append(notes, fmt.Sprintf("table %s looks like %s, but has no column for %s: left out", t.name, k.kind, strings.Join(missing, ", ")))
				break
			}
			children[k.kind] = g
			used[t.name] = true
			break
		}
	}
	if children["metrics"] == nil {
		return "", notes, fmt.Errorf("no metrics table found (a table with a run_id column and a name saying metric, history or scalar, with key and value columns): write the mapping by hand (docs/SQL-MAPPING.md)")
	}
	var unused []string
	for _, t := range tables {
		if !used[t.name] {
			unused = append(unused, t.name)
		}
	}
	for _, g := range append([]*genEntry{exps, runs}, children["params"], children["tags"], children["metrics"], children["logs"], children["artifacts"], children["rich_values"]) {
		if g == nil {
			continue
		}
		for _, f := range g.fields {
			if timeFields[f[0]] && slices.Contains(numericTypes, g.table.typeOf(f[1])) {
				g.timeEnc = "auto"
			}
		}
	}

	var b strings.Builder
	fmt.Fprintf(&b, "# Generated by runferry mapping generate from the tables of %s.\n", s.databaseName())
	b.WriteString("# Review it, then: runferry mapping check 'LOCATION?mapping=THIS_FILE' (docs/SQL-MAPPING.md).\n")
	for _, n := range notes {
		fmt.Fprintf(&b, "# NOTE: %s\n", n)
	}
	if len(unused) > 0 {
		fmt.Fprintf(&b, "# Tables not mapped: %s\n", strings.Join(unused, ", "))
	}
	b.WriteString("system: sql\n")
	if exps == nil {
		fmt.Fprintf(&b, "experiment: %s # the database has no experiments table: every run goes into this one\n", yamlScalar(s.databaseName()))
	}
	for _, g := range append([]*genEntry{exps, runs}, children["params"], children["tags"], children["metrics"], children["logs"], children["artifacts"], children["rich_values"]) {
		if g != nil {
			g.write(&b, d)
		}
	}
	out := b.String()
	if _, err := ParseMapping([]byte(out)); err != nil {
		return "", notes, fmt.Errorf("the generated mapping does not validate (a bug): %w\n%s", err, out)
	}
	return out, notes, nil
}

func (g *genEntry) column(field string) string {
	for _, f := range g.fields {
		if f[0] == field {
			return f[1]
		}
	}
	return ""
}

// missing returns the required fields of g without a column.
func (g *genEntry) missing() []string {
	var out []string
	for _, f := range entryFields[g.name][0] {
		if !g.has(f) {
			out = append(out, f)
		}
	}
	if g.name == "rich_values" && !slices.ContainsFunc(richKinds, g.has) {
		out = append(out, "the value (a value, text or file column)")
	}
	return out
}

func (g *genEntry) write(b *strings.Builder, d Dialect) {
	var cols []string
	for _, f := range g.fields {
		if c := d.ident(f[1]); !slices.Contains(cols, c) {
			cols = append(cols, c)
		}
	}
	q := "SELECT " + strings.Join(cols, ", ") + " FROM " + d.ident(g.table.name)
	if g.where != "" {
		q += " WHERE " + g.where
	}
	if len(g.order) > 0 {
		var o []string
		for _, c := range g.order {
			o = append(o, d.ident(c))
		}
		q += " ORDER BY " + strings.Join(o, ", ")
	}
	fmt.Fprintf(b, "%s:\n  query: %s\n  columns:\n", g.name, yamlScalar(q))
	for _, f := range g.fields {
		fmt.Fprintf(b, "    %s: %s\n", f[0], yamlScalar(f[1]))
	}
	if g.timeEnc != "" {
		fmt.Fprintf(b, "  time: %s # numeric times: below 1e11 epoch seconds, else milliseconds\n", g.timeEnc)
	}
	if len(g.status) > 0 {
		b.WriteString("  status: # the values found in the status column\n")
		for _, s := range g.status {
			if s[1] == "" {
				fmt.Fprintf(b, "    # %s: ? (RUNNING, FINISHED, FAILED or KILLED)\n", yamlScalar(s[0]))
				continue
			}
			fmt.Fprintf(b, "    %s: %s\n", yamlScalar(s[0]), s[1])
		}
	}
}

var yamlPlain = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_ ./=*(),:'-]*$`)

// yamlScalar writes s plain when YAML reads it back as the same string,
// else double-quoted.
func yamlScalar(s string) string {
	if yamlPlain.MatchString(s) && !strings.Contains(s, ": ") && !strings.HasSuffix(s, ":") && !strings.HasSuffix(s, " ") {
		switch strings.ToLower(s) {
		case "true", "false", "yes", "no", "on", "off", "null", "y", "n":
		default:
			return s
		}
	}
	return strconv.Quote(strings.ToValidUTF8(s, "\uFFFD")) // Go's escapes are YAML's for valid UTF-8
}

// distinct returns up to 50 distinct non-NULL values of a column, sorted.
func (s *Store) distinct(ctx context.Context, tbl, col string) ([]string, error) {
	d := s.Dialect
	rows, err := s.DB.QueryContext(ctx, "SELECT DISTINCT "+d.ident(col)+" FROM "+d.ident(tbl)+" WHERE "+d.ident(col)+" IS NOT NULL ORDER BY 1 LIMIT 50")
	if err != nil {
		return nil, fmt.Errorf("reading the values of %s.%s: %w", tbl, col, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v any
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		switch v := v.(type) {
		case []byte:
			out = append(out, string(v))
		default:
			out = append(out, fmt.Sprint(v))
		}
	}
	return out, rows.Err()
}

// databaseName is the database's name: a SQLite file's name without its
// extension, else the last element of HOST/DB.
func (s *Store) databaseName() string {
	base := filepath.Base(s.instance)
	if s.Dialect.Name == "sqlite" {
		base = strings.TrimSuffix(base, filepath.Ext(base))
	}
	return base
}
