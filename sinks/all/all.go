// Package all lists every sink adapter. It is the only package, with
// sources/all, that knows the concrete adapters; add one line per adapter.
package all

import (
	"github.com/runferry/runferry/sinks"
	"github.com/runferry/runferry/sinks/mlflow"
	"github.com/runferry/runferry/sinks/parquetdir"
	"github.com/runferry/runferry/sinks/sqldb"
)

// Sinks returns a registry holding every sink adapter.
func Sinks() *sinks.Registry {
	r := &sinks.Registry{}
	r.Add(parquetdir.Factory())
	r.Add(sinks.Factory{Description: mlflow.Description(), Open: mlflow.Open})
	for _, f := range sqldb.Factories() {
		r.Add(f)
	}
	return r
}
