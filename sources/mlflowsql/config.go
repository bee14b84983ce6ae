package mlflowsql

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/runferry/runferry/internal/location"
	"github.com/runferry/runferry/internal/mlflowconv"
	"github.com/runferry/runferry/internal/sqlstore"
	"github.com/runferry/runferry/sources"
)

// Config is the source's configuration, parsed from a location.
type Config struct {
	// DB is the database's own location (sqlite:PATH, postgres://...,
	// mysql://...), the mlflow+ prefix removed.
	DB location.Location
	// Instance is the first part of native origins' ids: the tracking
	// server that serves the store (HOST[:PORT][/PATH], as
	// mlflowconv.Instance names it) when the instance option gives it, so
	// that a run read here and through that server is the same run; else
	// the database itself ("sqlite:/ABS/PATH", "postgresql://HOST[:PORT]/DB").
	Instance string
	// ExperimentPrefix keeps only experiments whose name starts with it,
	// and removes it from their names (as the REST source's option).
	ExperimentPrefix string
	// Deleted also reads deleted experiments and runs.
	Deleted bool
	// Artifacts is the local folder mlflow-artifacts: URIs point into (the
	// server's --artifacts-destination); "" when not given.
	Artifacts string
}

var options = []location.Option{
	{Name: "instance", Help: "HOST[:PORT][/PATH] of the tracking server that serves this store, so that runs read here have the origins that server gives them (mlflow+http://HOST:PORT)."},
	{Name: "artifacts", Help: "Local folder that mlflow-artifacts: URIs point into (the server's --artifacts-destination); without it those runs' files are counted as not read."},
	{Name: "experiment-prefix", Help: "Read only experiments whose name starts with this, and remove it from their names."},
	{Name: "deleted", Default: "false", Help: "Also read deleted experiments and runs (true/false)."},
}

const help = `Reads MLflow's own SQL tracking store directly, without a server: experiments,
runs, params, tags, the full history of every metric, nested-run links, dataset
inputs, MLflow 3 logged models, the model registry and the files of runs whose
artifact location is a local folder (or under ?artifacts= for mlflow-artifacts:
URIs), exactly as the REST source reads them through a server; runs runferry
wrote into MLflow are read back exactly, from the files it stored with them
(readable here only under a local or ?artifacts= location). Every alembic
revision from MLflow 1.x to 3.17 is read; a database at a revision this
runferry does not know (a newer MLflow's) is refused. Traces are read with
their spans, as the server shows them. The store
is only read (SQLite files are opened read-only).`

// SQLiteDescription describes the source over an MLflow SQLite store.
func SQLiteDescription() location.Description {
	return location.Description{
		Scheme: "mlflow+sqlite", Kind: location.PathKind,
		Syntax:  "mlflow+sqlite:PATH",
		Summary: "MLflow SQLite store (mlflow.db), read directly without a server",
		Help:    help, Options: options,
		Example: "runferry copy mlflow+sqlite:./mlflow.db parquet:./archive",
	}
}

// PostgresDescription describes the source over an MLflow PostgreSQL store.
func PostgresDescription() location.Description {
	return location.Description{
		Scheme: "mlflow+postgresql", Aliases: []string{"mlflow+postgres"}, Kind: location.URLKind,
		Syntax:  "mlflow+postgresql://USER@HOST[:PORT]/DATABASE",
		Summary: "MLflow PostgreSQL store, read directly without a server",
		Help:    help, Options: append(sqlstore.PostgresOptions(), options...),
		Example: "PGPASSWORD=... runferry copy mlflow+postgresql://mlflow@db.example.com/mlflow parquet:./archive",
	}
}

// MySQLDescription describes the source over an MLflow MySQL/MariaDB store.
func MySQLDescription() location.Description {
	return location.Description{
		Scheme: "mlflow+mysql", Kind: location.URLKind,
		Syntax:  "mlflow+mysql://USER@HOST[:PORT]/DATABASE",
		Summary: "MLflow MySQL or MariaDB store, read directly without a server",
		Help:    help, Options: append(sqlstore.MySQLOptions(), options...),
		Example: "MYSQL_PWD=... runferry check mlflow+mysql://mlflow@db.example.com/mlflow parquet:./archive",
	}
}

// Factories returns the registry entries of the source, one per database.
func Factories() []sources.Factory {
	return []sources.Factory{
		{Description: SQLiteDescription(), Open: Open},
		{Description: PostgresDescription(), Open: Open},
		{Description: MySQLDescription(), Open: Open},
	}
}

// ParseConfig reads a location into a Config. It does no I/O.
func ParseConfig(loc location.Location) (Config, error) {
	c := Config{ExperimentPrefix: loc.Query("experiment-prefix"), Artifacts: loc.Query("artifacts")}
	if v := loc.Query("deleted"); v != "" {
		var err error
		if c.Deleted, err = strconv.ParseBool(v); err != nil {
			return Config{}, fmt.Errorf("mlflow store: deleted=%q: want true or false", v)
		}
	}
	db := loc
	switch loc.Scheme {
	case "mlflow+sqlite":
		db.Scheme = "sqlite"
		abs, err := filepath.Abs(loc.Path)
		if err != nil {
			return Config{}, err
		}
		c.Instance = "sqlite:" + filepath.ToSlash(abs)
	case "mlflow+postgresql", "mlflow+postgres", "mlflow+mysql":
		u := *loc.URL
		u.Scheme = strings.TrimPrefix(loc.Scheme, "mlflow+")
		if u.Scheme == "postgres" {
			u.Scheme = "postgresql"
		}
		db.Scheme, db.URL = u.Scheme, &u
		c.Instance = u.Scheme + "://" + strings.ToLower(u.Host) + u.Path
	default:
		return Config{}, fmt.Errorf("mlflow store: unknown scheme %q", loc.Scheme)
	}
	c.DB = db
	if v := loc.Query("instance"); v != "" {
		if !strings.Contains(v, "://") {
			v = "http://" + v
		}
		inst, err := mlflowconv.Instance(v)
		if err != nil {
			return Config{}, fmt.Errorf("mlflow store: instance=%q: want HOST[:PORT][/PATH] (or the URL) of the tracking server", loc.Query("instance"))
		}
		c.Instance = inst
	}
	return c, nil
}

// Open opens the source at loc: it connects, reads the store's alembic
// revision and refuses a revision it does not know.
func Open(ctx context.Context, loc location.Location) (sources.Source, error) {
	cfg, err := ParseConfig(loc)
	if err != nil {
		return nil, err
	}
	return New(ctx, cfg)
}
