package archive

import (
	"fmt"
	"strings"
)

// TableGlob is the read_parquet pattern of a table's current files,
// relative to the archive folder. The folder holds exactly the current
// files, so a plain read of the pattern sees each row once.
func TableGlob(table string) string { return table + "/*/*.parquet" }

// currentSQL returns DuckDB view definitions over the current data, one
// per table that holds at least one file (DuckDB refuses a view over no
// files). They are written to ARCHIVE/current.sql at each publish; run them
// from inside the archive folder: cd ARCHIVE && duckdb -init current.sql.
func currentSQL(m *Manifest) string {
	has := map[string]bool{}
	for _, f := range m.allFiles() {
		has[f.Table] = true
	}
	var b strings.Builder
	fmt.Fprintf(&b, "-- runferry archive (format %d, snapshot %d): views over the current data.\n", FormatVersion, m.Snapshot)
	b.WriteString("-- Run from inside the archive folder: cd ARCHIVE && duckdb -init current.sql\n")
	for _, t := range Tables {
		if has[t] {
			fmt.Fprintf(&b, "CREATE OR REPLACE VIEW %s AS SELECT * FROM read_parquet('%s');\n", t, TableGlob(t))
		}
	}
	return b.String()
}
