// Package all lists every source adapter. It is the only package, with
// sinks/all, that knows the concrete adapters; add one line per adapter.
package all

import (
	"github.com/runferry/runferry/sources"
	"github.com/runferry/runferry/sources/mlflow"
	"github.com/runferry/runferry/sources/mlflowfile"
	"github.com/runferry/runferry/sources/mlflowsql"
	"github.com/runferry/runferry/sources/parquetdir"
	"github.com/runferry/runferry/sources/sqldb"
	"github.com/runferry/runferry/sources/tensorboard"
	"github.com/runferry/runferry/sources/wandbcloud"
	"github.com/runferry/runferry/sources/wandbdir"
)

// Sources returns a registry holding every source adapter.
func Sources() *sources.Registry {
	r := &sources.Registry{}
	r.Add(parquetdir.Factory())
	r.Add(sources.Factory{Description: wandbdir.Description(), Open: wandbdir.Open})
	r.Add(sources.Factory{Description: mlflow.Description(), Open: mlflow.Open})
	r.Add(sources.Factory{Description: mlflowfile.Description(), Open: mlflowfile.Open})
	r.Add(sources.Factory{Description: wandbcloud.Description(), Open: wandbcloud.Open})
	r.Add(sources.Factory{Description: tensorboard.Description(), Open: tensorboard.Open})
	for _, f := range mlflowsql.Factories() {
		r.Add(f)
	}
	for _, f := range sqldb.Factories() {
		r.Add(f)
	}
	return r
}
