package main

import (
	"context"
	"fmt"
	"iter"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/runferry/runferry/internal/mlflowapi"
)

// storeLister is an MLflow source or sink that lists its store's
// experiments as the store holds them (sources/mlflow and its direct store
// readers, sinks/mlflow).
type storeLister interface {
	StoreExperiments(ctx context.Context) iter.Seq2[mlflowapi.Experiment, error]
}

// storeKey is what identifies an experiment of one MLflow store: the
// store's own id, the name and the creation time (milliseconds), which
// MLflow sets itself when the experiment is made. Another server holding
// runferry's copy of it has another id and its own creation time.
type storeKey struct {
	id, name string
	created  int64
}

// storeEvidence is what comparing the experiments of SRC and DST found.
type storeEvidence struct {
	src, dst int        // experiments with a creation time on each side
	shared   []storeKey // in both
}

// sure reports whether SRC and DST hold exactly the same experiments (at
// least one): one store, reached two ways.
func (e storeEvidence) sure() bool {
	return len(e.shared) > 0 && e.src == len(e.shared) && e.dst == len(e.shared)
}

// likely reports whether some experiments are in both: one store, or one a
// copy of the other's (a cloned database that went its own way since).
func (e storeEvidence) likely() bool { return len(e.shared) > 0 }

// example names the shared experiment made last, the most telling one.
func (e storeEvidence) example() string {
	k := slices.MaxFunc(e.shared, func(a, b storeKey) int { return int(a.created - b.created) })
	return fmt.Sprintf("%s %q, created %s", k.id, k.name, time.UnixMilli(k.created).UTC().Format("2006-01-02T15:04:05.000Z"))
}

// compareStores lists the experiments of src and dst (when both are MLflow
// stores that can list them) and returns what they share. ok is false when
// a side cannot tell (another kind of location, or a listing that failed:
// the job meets such a failure itself, with its own message). Experiments
// without a creation time (servers before MLflow 1.29) are no evidence.
func compareStores(ctx context.Context, src, dst any) (storeEvidence, bool) {
	s, ok1 := src.(storeLister)
	d, ok2 := dst.(storeLister)
	if !ok1 || !ok2 {
		return storeEvidence{}, false
	}
	list := func(l storeLister) (map[storeKey]bool, bool) {
		out := map[storeKey]bool{}
		for e, err := range l.StoreExperiments(ctx) {
			if err != nil {
				return nil, false
			}
			if e.CreationTime > 0 {
				out[storeKey{e.ExperimentID, e.Name, e.CreationTime}] = true
			}
		}
		return out, true
	}
	sk, ok := list(s)
	if !ok {
		return storeEvidence{}, false
	}
	dk, ok := list(d)
	if !ok {
		return storeEvidence{}, false
	}
	ev := storeEvidence{src: len(sk), dst: len(dk)}
	for k := range sk {
		if dk[k] {
			ev.shared = append(ev.shared, k)
		}
	}
	return ev, true
}

// sameStoreError is the refusal of a copy whose SRC and DST, MLflow stores
// named differently, hold the same experiments (nil if they do not, or if
// allow is set and they only share some); host is DST's, for the message.
func sameStoreError(ev storeEvidence, host string, allow bool) error {
	switch {
	case ev.sure():
		return usageError{fmt.Errorf("SRC and DST are the same MLflow server (%s; SRC holds the same %d experiments as DST, each with the same id, name and creation time, such as %s): a copy would write each of its runs again beside itself; name another server as DST, or give an experiment prefix (?experiment-prefix=, --experiment-prefix) to make copies on purpose",
			host, ev.src, ev.example())}
	case ev.likely() && !allow:
		return usageError{fmt.Errorf("SRC and DST look like one MLflow store, or copies of one (DST %s): %d of SRC's %d experiments are in DST with the same id, name and creation time (such as %s), though DST holds %d; a copy would write their runs again beside themselves. Name another server as DST, give an experiment prefix (?experiment-prefix=, --experiment-prefix) to make copies on purpose, or give --allow-same-store if SRC and DST are two stores and SRC's runs are to be copied into DST as they are",
			host, len(ev.shared), ev.src, ev.example(), ev.dst)}
	}
	return nil
}

// dstPrefixed reports whether the copy writes under an experiment prefix
// (--experiment-prefix as prefix, or DST's ?experiment-prefix=): copies on
// purpose, beside the runs they were made from.
func dstPrefixed(dst, prefix string) bool {
	if prefix != "" {
		return true
	}
	_, q, _ := strings.Cut(dst, "?")
	v, err := url.ParseQuery(q)
	return err == nil && v.Get("experiment-prefix") != ""
}

// sameLocation reports whether SRC and DST, as typed, name one runferry
// archive or one runferry SQL database: the same folder or file (by the
// file system: symlinks, trailing and doubled slashes alike), the same
// bucket, container and prefix at the same endpoint, or the same host,
// port and database. Its runs keep their first origins there, so a copy
// doubles nothing, but it would write a snapshot (an archive) or rewrite
// each run (SQL) to no purpose. An earlier snapshot of an archive read into
// it (SRC's ?snapshot=) and a mapped database (?mapping=) are other data,
// and not the same. It returns what both name, for the message.
func sameLocation(src, dst string) (kind, what string, same bool) {
	ss, sp, ok1 := strings.Cut(src, ":")
	ds, dp, ok2 := strings.Cut(dst, ":")
	ss, ds = strings.ToLower(ss), strings.ToLower(ds)
	if !ok1 || !ok2 || ss != ds {
		return "", "", false
	}
	spath, sq, _ := strings.Cut(sp, "?")
	dpath, dq, _ := strings.Cut(dp, "?")
	sv, err1 := url.ParseQuery(sq)
	dv, err2 := url.ParseQuery(dq)
	if err1 != nil || err2 != nil || sv.Has("snapshot") || sv.Has("mapping") || dv.Has("mapping") {
		return "", "", false
	}
	switch ss {
	case "parquet", "sqlite":
		kind = map[string]string{"parquet": "archive", "sqlite": "database"}[ss]
		if strings.Contains(spath, "://") || strings.Contains(dpath, "://") {
			su, e1 := url.Parse(spath)
			du, e2 := url.Parse(dpath)
			if e1 != nil || e2 != nil || su.Scheme != du.Scheme || su.Host != du.Host ||
				strings.Trim(su.Path, "/") != strings.Trim(du.Path, "/") || sv.Get("endpoint") != dv.Get("endpoint") {
				return "", "", false
			}
			return kind, ss + ":" + du.Scheme + "://" + du.Host + "/" + strings.Trim(du.Path, "/"), true
		}
		a, e1 := os.Stat(spath)
		b, e2 := os.Stat(dpath)
		if e1 != nil || e2 != nil || !os.SameFile(a, b) {
			return "", "", false
		}
		abs, err := filepath.Abs(dpath)
		if err != nil {
			abs = dpath
		}
		return kind, ss + ":" + abs, true
	case "postgres", "postgresql", "mysql":
		su, e1 := url.Parse(src)
		du, e2 := url.Parse(dst)
		if e1 != nil || e2 != nil {
			return "", "", false
		}
		key := func(u *url.URL) string {
			host, port := strings.ToLower(u.Hostname()), u.Port()
			if port == "" {
				port = map[string]string{"postgres": "5432", "postgresql": "5432", "mysql": "3306"}[ss]
			}
			if ip := net.ParseIP(host); host == "" || host == "localhost" || (ip != nil && ip.IsLoopback()) {
				host = "loopback"
			}
			return host + ":" + port + "/" + strings.Trim(u.Path, "/")
		}
		if key(su) != key(du) {
			return "", "", false
		}
		return "database", ss + ":" + "//" + du.Host + du.Path, true
	}
	return "", "", false
}

// mlflowHost returns the host and port of an mlflow+http(s) location, no
// credentials, for messages.
func mlflowHost(raw string) string {
	u, err := url.Parse(strings.TrimPrefix(raw, "mlflow+"))
	if err != nil {
		return ""
	}
	return u.Host
}
