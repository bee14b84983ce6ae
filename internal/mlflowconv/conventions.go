// Package mlflowconv is runferry's storage convention in MLflow: the tags
// that mark what runferry wrote (origins, completion, fingerprints), the
// sidecar and coverage files under runferry/, the mapping of run fields,
// config and keys onto what MLflow accepts, and the names of servers in
// origins. The MLflow sink writes it, the MLflow source reads it back, and
// any other path into MLflow's stores must follow it too. It sits above the
// REST client (internal/mlflowapi), which knows nothing of it.
package mlflowconv

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"path"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/runferry/runferry/internal/location"
	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/schema"
)

// The conventions below are how runferry marks what it writes into MLflow,
// shared by the sink (which writes them) and the source (which reads them
// back). sinks/mlflow/doc.go documents them for users.

// Run and experiment tags written by runferry. One tag is meant to be seen:
// runferry.origin, the provenance of a run or experiment. The bookkeeping
// runferry searches for or reads back lives under "mlflow.runferry.":
// MLflow's UI hides every tag whose key begins with "mlflow." from the Tags
// box, the runs table's tag columns and the group-by menu
// (getVisibleTagValues and isUserFacingTag in its JS bundle), yet such tags
// are stored and searchable like any other. Versions before 11 wrote the
// bookkeeping under "runferry." (FormerTag); readers and searches accept
// both, so copies written by them are still found and never duplicated.
// The MLflow source never exposes keys under either prefix as tags.
const (
	TagOrigin      = "runferry.origin"             // the source origin, "system:id": the visible provenance
	TagOriginKey   = "mlflow.runferry.origin_key"  // OriginKey(origin), searched for
	TagParent      = "mlflow.runferry.parent"      // the parent's origin
	TagParentKey   = "mlflow.runferry.parent_key"  // OriginKey(parent origin)
	TagComplete    = "mlflow.runferry.complete"    // written last: CompleteEnded, CompleteRunning or CompleteDeleted
	TagFingerprint = "mlflow.runferry.fingerprint" // the source fingerprint at commit
	TagMark        = "mlflow.runferry.mark"        // the engine's mark of what was committed (sinks.Marked), written with the complete tag
	TagSuperseded  = "mlflow.runferry.superseded"  // a run replaced by a later copy (then deleted)
	TagSidecar     = "mlflow.runferry.sidecar"     // path of the run.json sidecar
	// TagAppending holds, while an append to the run is under way, the
	// mark of the copy it extends (the copy's run.json and coverage.json
	// are kept under AppendBaseDir meanwhile), so that an append cut short
	// is continued in place rather than redone.
	TagAppending = "mlflow.runferry.appending"

	TagManaged      = "mlflow.runferry.managed"    // experiment written by runferry: "true"
	TagPrefix       = "mlflow.runferry.prefix"     // the experiment-prefix option it was written with
	TagExpDeleted   = "runferry.deleted"           // written by versions before 9.8 on experiments deleted in the source; no longer read
	TagExpName      = "mlflow.runferry.name"       // the source's experiment name
	TagExpTagKeys   = "mlflow.runferry.tag_keys"   // JSON map of mapped experiment tag keys
	TagExpCreatedAt = "mlflow.runferry.created_at" // the source's creation time (RFC 3339), or CreatedAtUnknown
)

// Values of TagComplete. Each says the copy is whole, as of its commit:
// CompleteEnded once the source run has ended (any status but RUNNING),
// CompleteRunning while it was still running (a later sync appends to it,
// and sets CompleteEnded once it has ended), CompleteDeleted for a run
// deleted in the source (deleted after the tag is written). A run without
// the tag is an interrupted copy.
const (
	CompleteEnded   = "true"
	CompleteRunning = "running"
	CompleteDeleted = "deleted"
)

// Tags MLflow's UI reads to find a run's step images and tables. The sink
// sets them (TagLoggedImages to LoggedImagesValue, as mlflow.log_image
// does) for the media it writes in MLflow's layouts, unless the run has
// them itself; the source does not expose them for runs runferry wrote
// unless the run's sidecar has them.
const (
	TagLoggedImages    = "mlflow.loggedImages"
	TagLoggedArtifacts = "mlflow.loggedArtifacts"
	LoggedImagesValue  = "True"
)

// MediaTag reports whether key is one of the tags the sink derives from
// media (TagLoggedImages, TagLoggedArtifacts).
func MediaTag(key string) bool { return key == TagLoggedImages || key == TagLoggedArtifacts }

// BookkeepingPrefix begins the keys of runferry's hidden bookkeeping tags;
// FormerBookkeepingPrefix began them (and still begins TagOrigin and the
// model registry's tags).
const (
	BookkeepingPrefix       = "mlflow.runferry."
	FormerBookkeepingPrefix = "runferry."
)

// FormerTag returns the key versions before 11 wrote the bookkeeping tag
// key under ("runferry.complete" for TagComplete), or "" for a key that
// kept its name.
func FormerTag(key string) string {
	if rest, ok := strings.CutPrefix(key, BookkeepingPrefix); ok {
		return FormerBookkeepingPrefix + rest
	}
	return ""
}

// Bookkeeping reports whether a run or experiment tag key is runferry's
// own, under its current or its former name: the MLflow source never
// exposes such keys as tags.
func Bookkeeping(key string) bool {
	return strings.HasPrefix(key, BookkeepingPrefix) || strings.HasPrefix(key, FormerBookkeepingPrefix)
}

// LookupTag returns the value of the bookkeeping tag key in tags, under its
// current name or else its former one (FormerTag).
func LookupTag(tags map[string]string, key string) (string, bool) {
	if v, ok := tags[key]; ok {
		return v, true
	}
	if f := FormerTag(key); f != "" {
		v, ok := tags[f]
		return v, ok
	}
	return "", false
}

// RunTag is LookupTag on a run's tags.
func RunTag(r mlflowapi.Run, key string) (string, bool) {
	if v, ok := r.Tag(key); ok {
		return v, true
	}
	if f := FormerTag(key); f != "" {
		return r.Tag(f)
	}
	return "", false
}

// CreatedAtUnknown is TagExpCreatedAt's value for an experiment whose
// source did not know its creation time.
const CreatedAtUnknown = "unknown"

// Artifact paths written by runferry, under the reserved folder Dir.
const (
	Dir            = "runferry/"
	SidecarPath    = "runferry/run.json"
	CoveragePath   = "runferry/coverage.json"
	LogsPath       = "runferry/logs.jsonl"
	RichValuesPath = "runferry/rich_values.jsonl"
	// FoldedMetricsPath holds the per-core CPU points folded into
	// CPUMeanKey (one FoldedPoint a line), when not written as series, and
	// the points of system metrics written in MLflow's unit
	// (Coverage.ConvertedMetrics), exactly as the source had them.
	FoldedMetricsPath = "runferry/folded_metrics.jsonl"
	FilesDir          = "runferry/files/" // source files whose own path began with Dir
	// AppendBaseDir holds, from the start of an append, the run.json and
	// coverage.json of the copy it extends (see TagAppending).
	AppendBaseDir = "runferry/append-base/"
)

// OriginKey is the searchable form of an origin: 32 hex digits, safe in a
// search filter whatever the origin contains.
func OriginKey(origin string) string {
	sum := sha256.Sum256([]byte(origin))
	return hex.EncodeToString(sum[:16])
}

// SidecarVersion is the Sidecar.Version the sink writes: 2 since W&B's
// facts a user does not filter by are folded into TagDetails (see
// RunEntitiesOf); 1 before. The MLflow source reads a copy as the version
// that wrote it mapped it.
const SidecarVersion = 2

// Sidecar is the content of SidecarPath: the run exactly as the sink was
// given it.
type Sidecar struct {
	Version int        `json:"version"`
	Run     schema.Run `json:"run"`
}

// Coverage is the content of CoveragePath, written at commit: everything
// MLflow could not hold as given, and where it went instead.
type Coverage struct {
	Version int    `json:"version"`
	Origin  string `json:"origin"`
	// Keys map MLflow keys back to the source's keys, for keys MLflow
	// rejects (characters, length, the reserved "runferry." prefix).
	MetricKeys map[string]string `json:"metric_keys,omitempty"`
	// SystemMetricKeys map the MLflow keys of renamed system metrics to
	// the source's keys ("system/gpu_0_utilization_percentage" to
	// "system/gpu.0.gpu"; see SystemMetricKey).
	SystemMetricKeys map[string]string `json:"system_metric_keys,omitempty"`
	// GeneratedMetrics are MLflow keys runferry derived (CPUMeanKey); the
	// source leaves them out.
	GeneratedMetrics []string `json:"generated_metrics,omitempty"`
	// FoldedPoints counts the points kept exactly in FoldedMetricsPath:
	// per-core CPU points folded into CPUMeanKey (instead of as series),
	// and the points of converted series (ConvertedPoints of them).
	FoldedPoints int64 `json:"folded_points,omitempty"`
	// ConvertedMetrics map the MLflow keys of system metrics written in
	// MLflow's unit to the source's keys ("system/network_transmit_megabytes"
	// to "system/network.sent"; see SystemMetric.Scale). Each is in
	// GeneratedMetrics too: the source reads the points of the source's key
	// from FoldedMetricsPath, exactly.
	ConvertedMetrics map[string]string `json:"converted_metrics,omitempty"`
	// ConvertedPoints counts the points of FoldedMetricsPath that are of
	// converted series.
	ConvertedPoints int64             `json:"converted_points,omitempty"`
	ParamKeys       map[string]string `json:"param_keys,omitempty"`
	TagKeys         map[string]string `json:"tag_keys,omitempty"`
	// Truncated lists values cut to the server's limits; the whole value
	// is in the sidecar.
	Truncated []Truncation `json:"truncated,omitempty"`
	// ConfigNotParams lists flattened config keys not written as params
	// (too long, or an explicit param has the key); the config is whole in
	// the sidecar and config.json.
	ConfigNotParams []string `json:"config_not_params,omitempty"`
	// Fixups restore points MLflow stores differently (±Inf, -0, negative
	// times) or collapses (exact duplicates).
	Fixups        []Fixup `json:"fixups,omitempty"`
	FixupsDropped int64   `json:"fixups_dropped,omitempty"` // beyond MaxFixups: lost
	// Rebased lists the metrics written against their W&B step metric
	// (define_metric), with the map back to the source's steps. Fixups of
	// these keys name the stored step.
	Rebased []Rebase `json:"rebased,omitempty"`
	// SummaryPoints lists the points derived from numeric summary values
	// (see SummaryValues); they are not the source's.
	SummaryPoints []SummaryPoint `json:"summary_points,omitempty"`
	// InputsNotHeld names the dataset inputs MLflow would refuse
	// ("name@digest: why"); they are whole in the sidecar.
	InputsNotHeld []string `json:"inputs_not_held,omitempty"`
	// LoggedModelsAsFiles lists the source's MLflow 3 logged models (by
	// model id) held as run files under mlflow-logged-models/<id>/ rather
	// than re-created as logged models (a server before MLflow 3).
	LoggedModelsAsFiles []string `json:"logged_models_as_files,omitempty"`
	// LoggedModels maps the source's logged models (by model id) to the
	// logged models re-created for them (new model ids; the source's id,
	// experiment, artifact root, run and creation time are in the model's
	// TagModelSource).
	LoggedModels map[string]string `json:"logged_models,omitempty"`
	// ModelMetricsNotLinked lists metric points of logged models that
	// another run logged ("model id: key@step"): they are not linked in
	// the destination, since logging them would add them to this run.
	ModelMetricsNotLinked []string `json:"model_metrics_not_linked,omitempty"`
	// FileProblems lists source files that could not be read, by path.
	FileProblems map[string]string `json:"file_problems,omitempty"`
	// FileDigests holds, by source path, the "sha256:<hex>" of each source
	// file the run holds, so that an append sends only new and changed
	// files and deletes those gone from the source.
	FileDigests map[string]string `json:"file_digests,omitempty"`
	// LogsDigest is the "sha256:<hex>" of the console output as written
	// (every segment's lines, in order): an append whose console output did
	// not change sends none of it again.
	LogsDigest string `json:"logs_digest,omitempty"`
	// LogSegments describes, when the console output is held in more than
	// one segment (LogSegmentPath), each segment in order; absent, the
	// output is one segment, LogsPath, of LogLines lines and digest
	// LogsDigest (the only layout before segments, kept for small logs).
	LogSegments []LogSegment `json:"log_segments,omitempty"`
	// OutputSegments describes, when the source's own output.log (a W&B
	// run's console file) is held in more than one segment
	// (OutputSegmentPath: output.log, output.1.log, ...), each segment in
	// order, cut as the console output is (a segment closed at the first
	// line boundary at or beyond the segment size); absent, the file is
	// held whole as output.log. FileDigests["output.log"] is the digest of
	// the whole file either way; readers join the segments into it.
	OutputSegments []LogSegment `json:"output_segments,omitempty"`
	// Cursors is the engine's cursors document of the points the run
	// holds (sinks.CursorKeeper), for appending without a ledger.
	Cursors json.RawMessage `json:"cursors,omitempty"`
	// Generated lists artifacts runferry derived (output.log, config.json);
	// the source hides them.
	Generated []string `json:"generated,omitempty"`
	// MediaNotShown counts W&B images and tables written as plain files
	// only, not in MLflow's image or table layout (file missing, too large,
	// not decodable, or beyond the tag's length).
	MediaNotShown int64 `json:"media_not_shown,omitempty"`
	Points        int64 `json:"points"`
	LogLines      int64 `json:"log_lines"`
	RichValues    int64 `json:"rich_values"`
	Files         int64 `json:"files"`
}

// LogSegment is one segment of a run's console output: its lines, its
// size in bytes and the "sha256:<hex>" of its bytes, as written.
type LogSegment struct {
	Lines  int64  `json:"lines"`
	Bytes  int64  `json:"bytes"`
	Digest string `json:"digest"`
}

// LogSegmentPath is the artifact path of the i-th segment (from 0) of
// the console output runferry writes: LogsPath, then
// runferry/logs.1.jsonl, runferry/logs.2.jsonl, ...
func LogSegmentPath(i int) string {
	if i == 0 {
		return LogsPath
	}
	return fmt.Sprintf("runferry/logs.%d.jsonl", i)
}

// OutputSegmentPath is the path of the plain-text console output runferry
// generates (when the source has no output.log of its own) for segment i:
// output.log, then output.1.log, output.2.log, ... each holding the lines
// of LogSegmentPath(i). The segments of a source's own output.log
// (Coverage.OutputSegments) have the same paths.
func OutputSegmentPath(i int) string {
	if i == 0 {
		return "output.log"
	}
	return fmt.Sprintf("output.%d.log", i)
}

// StoredPath is where a copy into MLflow stores a source file of path p:
// below FilesDir when p begins with Dir (the sink's own files) or has
// the name of a console segment beyond the first (output.1.log, ...:
// OutputSegmentPath), so that no source file and no file runferry writes
// share a path; p itself otherwise. Readers map FilesDir+p back to p.
func StoredPath(p string) string {
	if strings.HasPrefix(p, Dir) || isLaterOutputSegment(p) {
		return FilesDir + p
	}
	return p
}

// isLaterOutputSegment tells whether p is OutputSegmentPath(i) for an
// i of 1 or more.
func isLaterOutputSegment(p string) bool {
	n, ok := strings.CutPrefix(p, "output.")
	if !ok {
		return false
	}
	n, ok = strings.CutSuffix(n, ".log")
	if !ok || n == "" || n[0] == '0' {
		return false
	}
	for _, c := range n {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// Segments returns the console segments the coverage describes: its
// LogSegments, or the one segment of a copy written before segments (or
// of a small log), or none when it holds no console output.
func (c *Coverage) Segments() []LogSegment {
	switch {
	case len(c.LogSegments) > 0:
		return c.LogSegments
	case c.LogLines > 0 || c.LogsDigest != "":
		return []LogSegment{{Lines: c.LogLines, Digest: c.LogsDigest}}
	}
	return nil
}

// FoldedPoint is one line of FoldedMetricsPath: a source point exactly.
type FoldedPoint struct {
	Key   string          `json:"k"`
	Step  int64           `json:"s"`
	Time  int64           `json:"t"`
	Value mlflowapi.Float `json:"v"`
}

// Truncation is one value cut to a server limit.
type Truncation struct {
	What   string `json:"what"` // "param", "tag", "run name"
	Key    string `json:"key"`
	Length int    `json:"length"` // the original length in code points
}

// MaxFixups bounds the fixups kept per run.
const MaxFixups = 100_000

// Fixup says that the stored point (Key, Step, Time, Stored) stands for
// Points, the source's points at that key and step.
type Fixup struct {
	Key    string          `json:"k"`
	Step   int64           `json:"s"`
	Time   int64           `json:"t"`
	Stored mlflowapi.Float `json:"v"`
	Points []FixupPoint    `json:"p"`
}

// FixupPoint is one original point of a Fixup.
type FixupPoint struct {
	Time  int64           `json:"t"`
	Value mlflowapi.Float `json:"v"`
}

// ValidKey reports whether MLflow accepts key as a metric, param or tag
// key: at most mlflowapi.MaxKeyLength code points of letters, digits, '_', '/', '.',
// '-', ' ' and ':', unchanged by POSIX path normalisation.
func ValidKey(key string) bool {
	if key == "" || utf8.RuneCountInString(key) > mlflowapi.MaxKeyLength {
		return false
	}
	for _, r := range key {
		if !keyRune(r) && r != '/' {
			return false
		}
	}
	if strings.HasPrefix(key, "/") || strings.HasSuffix(key, "/") || strings.Contains(key, "//") {
		return false
	}
	for _, seg := range strings.Split(key, "/") {
		if seg == "." || seg == ".." {
			return false
		}
	}
	return true
}

func keyRune(r rune) bool {
	return r == '_' || r == '.' || r == '-' || r == ' ' || r == ':' || unicode.IsLetter(r) || unicode.IsDigit(r)
}

// MapKey returns key unchanged when MLflow accepts it and it does not use
// a reserved prefix ("runferry." or "mlflow.runferry."); else a valid key made of its allowed
// characters, '_' for the others, and 8 hex digits of a hash of the
// original ("a+b" becomes "a_b_1f3c9a20"). Sinks record the mapping in
// the coverage file so that sources can reverse it.
func MapKey(key string) (string, bool) {
	if ValidKey(key) && !strings.HasPrefix(key, FormerBookkeepingPrefix) && !strings.HasPrefix(key, BookkeepingPrefix) {
		return key, false
	}
	var b strings.Builder
	for _, r := range key {
		if keyRune(r) {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	s := b.String()
	if strings.HasPrefix(s, FormerBookkeepingPrefix) || strings.HasPrefix(s, BookkeepingPrefix) {
		s = "_" + s
	}
	if n := mlflowapi.MaxKeyLength - 9; utf8.RuneCountInString(s) > n {
		s = string([]rune(s)[:n])
	}
	sum := sha256.Sum256([]byte(key))
	return s + "_" + hex.EncodeToString(sum[:4]), true
}

// Truncate cuts s to at most n code points, reporting whether it did.
func Truncate(s string, n int) (string, bool) {
	if utf8.RuneCountInString(s) <= n {
		return s, false
	}
	return string([]rune(s)[:n]), true
}

// Instance names the tracking server at baseURL in origins: HOST[:PORT][/PATH]
// with the host in lower case, the port left out when it is the scheme's
// default (80 for http, 443 for https), the path cleaned and without a
// trailing slash. The scheme, user info, query and fragment are not part
// of it, so http://h and https://h/ (a server behind TLS termination) name
// one server, and no credential ever reaches an origin. Another name of the
// same server (an IP address for a host name, localhost for 127.0.0.1) is
// another instance.
func Instance(baseURL string) (string, error) {
	u, err := url.Parse(baseURL)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("mlflow: bad tracking URI %q: want http(s)://HOST[:PORT][/PATH]", location.Redact(baseURL))
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if strings.Contains(host, ":") {
		host = "[" + host + "]" // IPv6
	}
	if port != "" && !(port == "80" && u.Scheme == "http") && !(port == "443" && u.Scheme == "https") {
		host += ":" + port
	}
	p := strings.TrimRight(path.Clean("/"+u.Path), "/")
	return host + p, nil
}

// Tags runferry writes on the logged models it re-creates (beside
// TagOrigin and TagOriginKey: the source model's origin, OriginKey of it).
const (
	// TagModelSource holds ModelSource as JSON: what the destination
	// cannot hold of the source's logged model.
	TagModelSource = "runferry.source_model"
)

// ModelOrigin is the origin of logged model modelID of the run whose
// origin is run: the run's origin and the model's id.
func ModelOrigin(run, modelID string) string { return run + "#logged-model/" + modelID }

// Tags runferry writes on registered models and versions (the model also
// carries TagOrigin and TagCreatedAt, a version TagCreatedAt). The source
// never exposes keys under "runferry." as tags. Registry tags kept their
// names in version 11 (MLflow's registry pages show no tag box to clear).
const (
	// TagCreatedAt is the source's creation time of a model or version
	// (RFC 3339), or CreatedAtUnknown.
	TagCreatedAt = "runferry.created_at"
	// TagModelVersion is the version number the source gave a version, so
	// that a re-run finds the versions it created instead of adding more.
	TagModelVersion = "runferry.version"
	// TagSourceRun is the origin of the run a version came from, kept
	// whether or not that run is in the destination.
	TagSourceRun = "runferry.source_run"
)
