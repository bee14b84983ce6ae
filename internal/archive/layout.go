package archive

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"runtime/debug"
	"strings"
)

// FormatName and FormatVersion identify the archive format in every
// manifest. A reader refuses a manifest with a newer FormatVersion and reads
// every older one (version 1 had no inputs/ table, version 2 no model
// registry and no traces/ table, and up to version 3 a run held one
// metrics file, where version 4 may hold its points in several: the first
// written whole and each later one the points a sync appended; version 5
// adds the run entry's cursors). A writer
// records its own FormatVersion at each publish.
const (
	FormatName    = "runferry-archive"
	FormatVersion = 5
)

// The tables of an archive, each a folder of Parquet files.
const (
	TableExperiments = "experiments"
	TableRuns        = "runs"
	TableParams      = "params"
	TableTags        = "tags"
	TableMetrics     = "metrics"
	TableRichValues  = "rich_values"
	TableLogs        = "logs"
	TableArtifacts   = "artifacts"
	// TableArtifactVersions and TableArtifactEntries index the W&B
	// Artifacts manifests among a run's files (see ArtifactVersionRow).
	TableArtifactVersions = "artifact_versions"
	TableArtifactEntries  = "artifact_entries"
	TableInputs           = "inputs" // since format version 2
	// TableRegisteredModels and TableModelVersions hold the model registry
	// (since format version 3): one folder per registered model.
	TableRegisteredModels = "registered_models"
	TableModelVersions    = "model_versions"
	// TableTraces holds the traces of an experiment (MLflow tracing), one
	// file per experiment listed with the experiment's files.
	TableTraces = "traces" // since format version 3
)

// Tables lists every table folder.
var Tables = []string{TableExperiments, TableRuns, TableParams, TableTags, TableMetrics, TableRichValues, TableLogs, TableArtifacts,
	TableArtifactVersions, TableArtifactEntries, TableInputs, TableRegisteredModels, TableModelVersions, TableTraces}

// Fixed names inside an archive.
const (
	ManifestFile = "manifest.json"
	snapshotsDir = "snapshots"
	journalDir   = "journal"
	historyDir   = "history"
	stagingDir   = ".staging"
	blobsDir     = "blobs"
	lockFile     = ".lock"
	// commitLockFile is locked around each commit (concurrent writers).
	commitLockFile = ".commit.lock"
	tmpSuffix      = ".tmp"
)

// Version is the runferry version recorded in manifests: the main module's
// version from the build info, or "devel".
var Version = func() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}()

// EntityKey is the folder name of a run's or experiment's files: the first
// 20 hex digits of the SHA-256 of its origin ("system:id"), so that any
// origin makes a safe, fixed-length path element.
func EntityKey(origin string) string {
	sum := sha256.Sum256([]byte(origin))
	return hex.EncodeToString(sum[:10])
}

// newFilePath returns a fresh slash path for a data file of table holding
// the entity's rows, written in snapshot.
func newFilePath(table, origin string, snapshot int64) string {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return path.Join(table, EntityKey(origin), fmt.Sprintf("%06d-%s.parquet", snapshot, hex.EncodeToString(b[:])))
}

// blobPath returns the slash path of the blob holding content with the
// given SHA-256 (hex).
func blobPath(sha string) string {
	return path.Join(blobsDir, "sha256", sha[:2], sha)
}

func snapshotPath(n int64) string { return path.Join(snapshotsDir, fmt.Sprintf("%06d.json", n)) }
func journalPath(n int64) string  { return path.Join(journalDir, fmt.Sprintf("%06d.jsonl", n)) }

// abs joins an archive root and a slash path.
func abs(root, p string) string { return filepath.Join(root, filepath.FromSlash(p)) }

// resolve finds a data file that a manifest or journal lists under p. A
// file lives at p while current, under history/ once superseded, and under
// .staging/ between its commit and its move into place (a crash can leave
// it there); resolve tries those three places in that order.
func resolve(st Store, p string) (string, error) {
	rel, _, err := resolveStat(st, p)
	return rel, err
}

// resolveStat is resolve, also returning what Stat said of the file found.
func resolveStat(st Store, p string) (string, ObjectInfo, error) {
	for _, cand := range []string{p, path.Join(historyDir, p), path.Join(stagingDir, p)} {
		info, err := st.Stat(cand)
		if err == nil {
			return cand, info, nil
		}
		if !notExist(err) {
			return "", ObjectInfo{}, fmt.Errorf("%s: %w", st.Name(cand), err)
		}
	}
	return "", ObjectInfo{}, fmt.Errorf("%s: %w", st.Name(p), os.ErrNotExist)
}

func isTmp(name string) bool { return strings.HasSuffix(name, tmpSuffix) }
