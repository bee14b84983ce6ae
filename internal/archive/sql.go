package archive

import (
	"fmt"
	"strings"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"
)

// TableGlob is the read_parquet pattern of a table's current files,
// relative to the archive folder. The folder holds exactly the current
// files, so a plain read of the pattern sees each row once.
func TableGlob(table string) string { return table + "/*/*.parquet" }

// tableRows holds, for each table of Tables, a value of the row type its
// files are written with: the source of the columns of its empty view.
var tableRows = map[string]any{
	TableExperiments:      ExperimentRow{},
	TableRuns:             RunRow{},
	TableParams:           KVRow{},
	TableTags:             KVRow{},
	TableMetrics:          MetricRow{},
	TableRichValues:       RichValueRow{},
	TableLogs:             LogRow{},
	TableArtifacts:        ArtifactRow{},
	TableArtifactVersions: ArtifactVersionRow{},
	TableArtifactEntries:  ArtifactEntryRow{},
	TableInputs:           InputRow{},
	TableRegisteredModels: RegisteredModelRow{},
	TableModelVersions:    ModelVersionRow{},
	TableTraces:           TraceRow{},
}

// currentSQL returns DuckDB view definitions over the current data, one
// per table of Tables, so that every view exists in every archive: a table
// with files is a view over its glob, a table without any (DuckDB refuses
// a read_parquet of a pattern matching no file) an empty view with the
// table's columns, named and typed as DuckDB reads them from the table's
// files. They are written to ARCHIVE/current.sql at each publish; run them
// from inside the archive folder: cd ARCHIVE && duckdb -init current.sql.
func currentSQL(m *Manifest) string {
	has := map[string]bool{}
	for _, e := range m.Experiments {
		for _, f := range e.Files {
			has[f.Table] = true
		}
	}
	for _, e := range m.Models {
		for _, f := range e.Files {
			has[f.Table] = true
		}
	}
	for _, r := range m.Runs {
		if r.spilled != nil {
			for i, t := range Tables {
				if i < 32 && r.spilled.tables&(1<<i) != 0 {
					has[t] = true
				}
			}
			continue
		}
		for _, f := range r.Files {
			has[f.Table] = true
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "-- runferry archive (format %d, snapshot %d): views over the current data.\n", FormatVersion, m.Snapshot)
	b.WriteString("-- Run from inside the archive folder: cd ARCHIVE && duckdb -init current.sql\n")
	b.WriteString("-- A table without files is an empty view with its columns.\n")
	for _, t := range Tables {
		if has[t] {
			fmt.Fprintf(&b, "CREATE OR REPLACE VIEW %s AS SELECT * FROM read_parquet('%s');\n", t, TableGlob(t))
		} else {
			fmt.Fprintf(&b, "CREATE OR REPLACE VIEW %s AS %s;\n", t, emptySelect(tableRows[t]))
		}
	}
	return b.String()
}

// emptySelect returns a DuckDB SELECT of no rows whose columns are those
// of the Parquet schema of row, in order, each of the type DuckDB gives
// that column when it reads a file of the schema.
func emptySelect(row any) string {
	var cols []string
	for _, f := range parquet.SchemaOf(row).Fields() {
		cols = append(cols, fmt.Sprintf("CAST(NULL AS %s) AS \"%s\"", duckDBType(f.Type()), f.Name()))
	}
	return "SELECT " + strings.Join(cols, ", ") + " WHERE false"
}

// duckDBType is the DuckDB type of a column of Parquet type t, for the
// types the archive's tables use (a panic for any other: a new column type
// needs its mapping here).
func duckDBType(t parquet.Type) string {
	var logical format.LogicalTypeValue
	if lt := t.LogicalType(); lt != nil {
		logical = lt.Value
	}
	if ts, ok := logical.(*format.TimestampType); ok {
		// DuckDB reads a timestamp adjusted to UTC as TIMESTAMPTZ, a local
		// one as TIMESTAMP; the unit does not show in the type.
		if ts.IsAdjustedToUTC {
			return "TIMESTAMP WITH TIME ZONE"
		}
		return "TIMESTAMP"
	}
	switch t.Kind() {
	case parquet.Boolean:
		return "BOOLEAN"
	case parquet.Int32:
		return "INTEGER"
	case parquet.Int64:
		return "BIGINT"
	case parquet.Float:
		return "FLOAT"
	case parquet.Double:
		return "DOUBLE"
	case parquet.ByteArray:
		if _, ok := logical.(*format.StringType); ok {
			return "VARCHAR"
		}
		return "BLOB"
	}
	panic(fmt.Sprintf("archive: no DuckDB type for Parquet type %v", t))
}
