package location

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// objectStores are the URL schemes of object storage that users put where a
// local path belongs. Only the Parquet archive takes object storage (s3://,
// gs://, azblob://: see StoreKind); elsewhere such locations are refused rather than written
// to a local folder named "s3:".
var objectStores = map[string]string{
	"s3": "S3", "s3a": "S3", "gs": "Google Cloud Storage", "gcs": "Google Cloud Storage",
	"az": "Azure Blob Storage", "azblob": "Azure Blob Storage", "abfs": "Azure Data Lake", "abfss": "Azure Data Lake",
	"wasb": "Azure Blob Storage", "wasbs": "Azure Blob Storage", "r2": "Cloudflare R2", "oss": "Alibaba OSS",
	"cos": "Tencent COS", "b2": "Backblaze B2", "swift": "OpenStack Swift", "hdfs": "HDFS", "minio": "MinIO",
}

// urlPrefix matches "scheme://" at the start of a string.
var urlPrefix = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9+.-]*)://`)

// refuseURLPath returns an error when path, the rest of a path-scheme
// location, is itself a URL ("parquet:s3://bucket/x"): it would otherwise
// name a local folder "s3:".
func refuseURLPath(raw, scheme, path string) error {
	m := urlPrefix.FindStringSubmatch(path)
	if m == nil {
		// "s3:bucket/x", "gs:/bucket": no local folder is meant to be
		// called "s3:" either.
		if inner, _, ok := strings.Cut(path, ":"); ok {
			if name := objectStores[strings.ToLower(inner)]; name != "" {
				return fmt.Errorf("location %q: object storage (%s) is not supported yet: %s: takes a local path; copy to a local folder (%s:/backups/x) and upload it with your storage's own tool",
					Redact(raw), name, scheme, scheme)
			}
		}
		return nil
	}
	inner := strings.ToLower(m[1])
	switch {
	case inner == "gcs" && scheme == "parquet":
		return fmt.Errorf("location %q: Google Cloud Storage is written gs://: did you mean %q?", Redact(raw), scheme+":gs://"+Redact(strings.TrimPrefix(path, m[0])))
	case objectStores[inner] != "":
		return fmt.Errorf("location %q: object storage (%s) is not supported yet: %s: takes a local path; copy to a local folder (%s:/backups/x) and upload it with your storage's own tool",
			Redact(raw), objectStores[inner], scheme, scheme)
	case inner == "file":
		p := strings.TrimPrefix(path, m[0])
		if h, rest, _ := strings.Cut(p, "/"); h == "" || h == "localhost" {
			return fmt.Errorf("location %q: %s: takes a plain path, not a file:// URL: use %s:/%s", Redact(raw), scheme, scheme, Redact(rest))
		}
		return fmt.Errorf("location %q: %s: takes a local path, not a file:// URL", Redact(raw), scheme)
	case inner == "http" || inner == "https":
		return fmt.Errorf("location %q: %s: takes a local path; reading or writing it over %s is not supported (for an MLflow tracking server use mlflow+%s://HOST[:PORT])",
			Redact(raw), scheme, strings.ToUpper(inner), inner)
	}
	return fmt.Errorf("location %q: %s: takes a local path, not a %s:// URL (remote storage is not supported yet)", Redact(raw), scheme, inner)
}

// unknownSchemeHint returns a suggestion for a location whose scheme no
// adapter serves, or "".
func unknownSchemeHint(raw, scheme string) string {
	switch {
	case slices.Contains(ObjectStoreSchemes, scheme):
		return fmt.Sprintf("did you mean %q? (a runferry archive in %s)", "parquet:"+Redact(raw), objectStores[scheme])
	case objectStores[scheme] != "":
		return fmt.Sprintf("object storage (%s) is not supported yet: give a local path, such as parquet:/backups/x", objectStores[scheme])
	case scheme == "http" || scheme == "https":
		return fmt.Sprintf("did you mean %q? (MLflow tracking servers are named mlflow+http:// or mlflow+https://)", "mlflow+"+Redact(raw))
	case scheme == "file":
		return "give the path with an adapter's scheme, such as wandb:/data/wandb or parquet:/backups/x"
	case scheme == "mlflow":
		return "name the MLflow store or server: mlflow+file:PATH (an mlruns folder), mlflow+sqlite:PATH (an mlflow.db), mlflow+postgresql:// or mlflow+mysql:// (a database), mlflow+http://HOST:PORT (a tracking server)"
	}
	return ""
}

// pathHint returns a suggestion for path, given without a scheme, that
// fits what the path holds: an MLflow store, W&B run folders, a runferry
// archive. It reads only directory entries and the first bytes of a file;
// "" means nothing fitting was found.
func pathHint(path string) string {
	if kind, where := mlflowStore(path); kind != "" {
		return fmt.Sprintf("%s holds an MLflow %s; %s", path, kind, storeAdvice(kind, where))
	}
	fi, err := os.Stat(path)
	if err != nil {
		switch filepath.Base(filepath.Clean(path)) {
		case "mlruns":
			return fmt.Sprintf("%s would be an MLflow file store, which runferry reads as mlflow+file:%s", path, path)
		case "mlflow.db":
			return fmt.Sprintf("%s would be an MLflow SQLite store: %s", path, storeAdvice("SQLite store", path))
		}
		return ""
	}
	if !fi.IsDir() {
		return ""
	}
	if _, err := os.Stat(filepath.Join(path, "manifest.json")); err == nil {
		return fmt.Sprintf("did you mean %q? (it holds a manifest.json, as a runferry archive does)", "parquet:"+path)
	}
	if looksLikeWandb(path) {
		return fmt.Sprintf("did you mean %q? (it holds W&B run folders)", "wandb:"+path)
	}
	return ""
}

// refuseMLflowStorePath returns an error when path, the path of a
// path-scheme location, is itself an MLflow store, which no path adapter
// reads or should write into.
func refuseMLflowStorePath(raw, scheme, path string) error {
	if strings.HasPrefix(scheme, "mlflow+") {
		return nil // the readers of MLflow's stores
	}
	kind, where := mlflowStore(path)
	if kind == "" || filepath.Clean(where) != filepath.Clean(path) {
		return nil
	}
	return fmt.Errorf("location %q: %s is an MLflow %s, not what %s: takes; %s",
		Redact(raw), path, kind, scheme, storeAdvice(kind, where))
}

// storeAdvice tells how runferry reads the MLflow store of kind at where:
// a file store with mlflow+file:, an SQLite store with mlflow+sqlite:.
func storeAdvice(kind, where string) string {
	if kind == "SQLite store" {
		return "read it directly: mlflow+sqlite:" + where
	}
	return "read it with mlflow+file:" + where
}

// mlflowStore reports whether path is, or directly holds, an MLflow file
// store (a folder of experiment folders with meta.yaml, as "mlruns") or an
// MLflow SQLite database; kind is "" when it is neither, and where is the
// store itself.
func mlflowStore(path string) (kind, where string) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", ""
	}
	if !fi.IsDir() {
		if isMLflowSQLite(path) {
			return "SQLite store", path
		}
		return "", ""
	}
	if isMLflowFileStore(path) {
		return "file store", path
	}
	for _, name := range []string{"mlruns", "mlflow.db"} {
		p := filepath.Join(path, name)
		if k, w := mlflowStore(p); k != "" && w == p {
			return k, w
		}
	}
	return "", ""
}

// isMLflowFileStore: dir holds ".trash" or an experiment folder whose
// meta.yaml names an artifact location.
func isMLflowFileStore(dir string) bool {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if e.Name() == ".trash" {
			return true
		}
		b, err := readHead(filepath.Join(dir, e.Name(), "meta.yaml"), 4096)
		if err == nil && bytes.Contains(b, []byte("artifact_location:")) {
			return true
		}
	}
	return false
}

// isMLflowSQLite: path is an SQLite database named mlflow.db, or whose
// schema (on its first pages) creates MLflow's experiments table under
// alembic migrations.
func isMLflowSQLite(path string) bool {
	b, err := readHead(path, 256<<10)
	if err != nil || !bytes.HasPrefix(b, []byte("SQLite format 3\x00")) {
		return false
	}
	return filepath.Base(path) == "mlflow.db" ||
		bytes.Contains(b, []byte("CREATE TABLE experiments")) && bytes.Contains(b, []byte("alembic_version"))
}

// looksLikeWandb: dir holds a run folder ("run-*" / "offline-run-*") or a
// "wandb" folder.
func looksLikeWandb(dir string) bool {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() && (n == "wandb" || strings.HasPrefix(n, "run-") || strings.HasPrefix(n, "offline-run-")) {
			return true
		}
		if strings.HasSuffix(n, ".wandb") {
			return true
		}
	}
	return false
}

func readHead(path string, n int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, n))
}
