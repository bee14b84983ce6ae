package wandbfile

import (
	"time"

	"github.com/runferry/runferry/internal/pbwire"
)

// OutputStream says which console stream an Output record captured.
type OutputStream int32

// The console streams, numbered as OutputRecord.output_type. Proto3 omits
// the zero value, so a record without the field is stderr.
const (
	Stderr OutputStream = 0
	Stdout OutputStream = 1
)

// String returns "stderr", "stdout" or "stream_N".
func (s OutputStream) String() string {
	switch s {
	case Stderr:
		return "stderr"
	case Stdout:
		return "stdout"
	}
	return "stream_" + itoa(int64(s))
}

// MarshalText renders the stream by name, for JSON output.
func (s OutputStream) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Output is an OutputRecord (KindOutput, cleaned lines, legacy) or an
// OutputRawRecord (KindOutputRaw, raw terminal chunks that may hold "\r",
// ANSI escapes and partial lines).
type Output struct {
	Stream    OutputStream `json:"stream"`
	Timestamp time.Time    `json:"timestamp,omitzero"`
	Line      string       `json:"line"`
}

// OutputLogger is an OutputLoggerRecord (0.27+): a line from run.write_logs
// or a captured Python logger.
type OutputLogger struct {
	Line string `json:"line"`
}

// FilePolicy is when a run file is uploaded (FilesItem.policy).
type FilePolicy int32

// The upload policies.
const (
	PolicyNow  FilePolicy = 0
	PolicyEnd  FilePolicy = 1
	PolicyLive FilePolicy = 2
)

// String returns "now", "end", "live" or "policy_N".
func (p FilePolicy) String() string {
	switch p {
	case PolicyNow:
		return "now"
	case PolicyEnd:
		return "end"
	case PolicyLive:
		return "live"
	}
	return "policy_" + itoa(int64(p))
}

// MarshalText renders the policy by name, for JSON output.
func (p FilePolicy) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// FileItem is one file of a Files record.
type FileItem struct {
	// Path is relative to the run's files/ directory and may be a glob.
	Path   string     `json:"path"`
	Policy FilePolicy `json:"policy"`
	// Type is FilesItem.type: 0 other, 1 wandb, 2 media, 3 artifact
	// (SDK 0.16.2+).
	Type int32 `json:"type,omitempty"`
}

// Files is a FilesRecord: run files to upload.
type Files struct {
	Files []FileItem `json:"files"`
}

// Metric is a MetricRecord, written by run.define_metric.
type Metric struct {
	Name string `json:"name,omitempty"`
	// GlobName is set instead of Name for a pattern such as "train/*".
	GlobName string `json:"glob_name,omitempty"`
	// StepMetric names the metric's custom x-axis.
	StepMetric      string `json:"step_metric,omitempty"`
	StepMetricIndex int32  `json:"step_metric_index,omitempty"`
	StepSync        bool   `json:"step_sync,omitempty"`
	Hidden          bool   `json:"hidden,omitempty"`
	Defined         bool   `json:"defined,omitempty"`
	// Summary lists the summary statistics requested, among "min", "max",
	// "mean", "best", "last", "none", "copy", "first".
	Summary []string `json:"summary,omitempty"`
	// Goal is 0 unset, 1 minimize, 2 maximize.
	Goal             int32 `json:"goal,omitempty"`
	Overwrite        bool  `json:"overwrite,omitempty"`
	ExpandedFromGlob bool  `json:"expanded_from_glob,omitempty"`
}

// metricSummaryNames are the MetricSummary bool fields by field number.
var metricSummaryNames = [...]string{1: "min", 2: "max", 3: "mean", 4: "best", 5: "last", 6: "none", 7: "copy", 8: "first"}

// Artifact is an ArtifactRecord: an artifact version a run logged. W&B
// persists it for offline `log_artifact` (online runs send a request that
// is not persisted). Its manifest is inline (Entries) unless it was too
// large, in which case ManifestFile names a gzipped JSON-lines file on the
// machine that wrote the run. Version numbers are not in the record: the
// server assigns them on sync.
type Artifact struct {
	RunID       string   `json:"run_id,omitempty"`
	Project     string   `json:"project,omitempty"`
	Entity      string   `json:"entity,omitempty"`
	Type        string   `json:"type"`
	Name        string   `json:"name"`
	Digest      string   `json:"digest,omitempty"`
	Description string   `json:"description,omitempty"`
	Metadata    string   `json:"metadata,omitempty"` // a JSON document
	Aliases     []string `json:"aliases,omitempty"`
	Tags        []string `json:"tags,omitempty"`
	// ClientID and SequenceClientID are the SDK's ids of this version and
	// of its collection; BaseID the version an incremental one builds on.
	ClientID         string `json:"client_id,omitempty"`
	SequenceClientID string `json:"sequence_client_id,omitempty"`
	BaseID           string `json:"base_id,omitempty"`
	// ManifestVersion and StoragePolicy are the manifest's format.
	ManifestVersion int32           `json:"manifest_version,omitempty"`
	StoragePolicy   string          `json:"storage_policy,omitempty"`
	ManifestFile    string          `json:"manifest_file_path,omitempty"`
	Entries         []ArtifactEntry `json:"entries,omitempty"`
}

// ArtifactEntry is one file of an artifact manifest.
type ArtifactEntry struct {
	Path string `json:"path"`
	// Digest is usually the base64 MD5 of the content; for a reference
	// entry it is whatever the referenced store vouches for (an ETag).
	Digest string `json:"digest,omitempty"`
	// Ref is an external reference (s3://, gs://, https://...): the
	// content lives there, not in the artifact.
	Ref  string `json:"ref,omitempty"`
	Size int64  `json:"size,omitempty"`
	// LocalPath is where the SDK staged the content on the writing machine.
	LocalPath       string `json:"local_path,omitempty"`
	Mimetype        string `json:"mimetype,omitempty"`
	BirthArtifactID string `json:"birth_artifact_id,omitempty"`
}

// UseArtifact is a UseArtifactRecord: the run used (consumed) an artifact
// version. Name carries the version or alias ("name:v3"); ID is the
// server's id of the version. The SDK refuses use_artifact offline, so
// only runs that were online hold these.
type UseArtifact struct {
	ID   string `json:"id,omitempty"`
	Type string `json:"type,omitempty"`
	Name string `json:"name,omitempty"`
	// JobName is PartialJobArtifact.job_name, for a partial job artifact.
	JobName string `json:"job_name,omitempty"`
}

// TBRecord is a TBRecord: a TensorBoard log directory synced with the run.
type TBRecord struct {
	LogDir  string `json:"log_dir,omitempty"`
	Save    bool   `json:"save,omitempty"`
	RootDir string `json:"root_dir,omitempty"`
}

// Alert is an AlertRecord, sent by run.alert.
type Alert struct {
	Title        string `json:"title,omitempty"`
	Text         string `json:"text,omitempty"`
	Level        string `json:"level,omitempty"`
	WaitDuration int64  `json:"wait_duration,omitempty"`
}

// decodeOutput decodes an OutputRecord or OutputRawRecord.
func decodeOutput(b []byte) (*Output, error) {
	o := &Output{}
	err := pbwire.Walk(b, func(f pbwire.Field) error {
		switch f.Num {
		case 1:
			v, err := f.Int32()
			o.Stream = OutputStream(v)
			return err
		case 2:
			return f.SetTime(&o.Timestamp)
		case 3:
			return f.SetStr(&o.Line)
		}
		return nil
	})
	return o, err
}

// decodeOutputLogger decodes an OutputLoggerRecord.
func decodeOutputLogger(b []byte) (*OutputLogger, error) {
	o := &OutputLogger{}
	err := pbwire.Walk(b, func(f pbwire.Field) error {
		if f.Num == 1 {
			return f.SetStr(&o.Line)
		}
		return nil
	})
	return o, err
}

// decodeFiles decodes a FilesRecord.
func decodeFiles(b []byte) (*Files, error) {
	fs := &Files{}
	err := pbwire.Walk(b, func(f pbwire.Field) error {
		if f.Num != 1 {
			return nil
		}
		item, err := f.Message()
		if err != nil {
			return err
		}
		var fi FileItem
		err = pbwire.Walk(item, func(g pbwire.Field) error {
			switch g.Num {
			case 1:
				return g.SetStr(&fi.Path)
			case 2:
				v, err := g.Int32()
				fi.Policy = FilePolicy(v)
				return err
			case 3:
				return g.SetInt32(&fi.Type)
			}
			return nil
		})
		fs.Files = append(fs.Files, fi)
		return within("files", err)
	})
	return fs, err
}

// decodeMetric decodes a MetricRecord.
func decodeMetric(b []byte) (*Metric, error) {
	m := &Metric{}
	err := pbwire.Walk(b, func(f pbwire.Field) error {
		switch f.Num {
		case 1:
			return f.SetStr(&m.Name)
		case 2:
			return f.SetStr(&m.GlobName)
		case 4:
			return f.SetStr(&m.StepMetric)
		case 5:
			return f.SetInt32(&m.StepMetricIndex)
		case 6:
			return within("options", decodeBools(f, map[int]*bool{1: &m.StepSync, 2: &m.Hidden, 3: &m.Defined}))
		case 7:
			return within("summary", decodeMetricSummary(f, m))
		case 8:
			return f.SetInt32(&m.Goal)
		case 9:
			return within("_control", decodeBools(f, map[int]*bool{1: &m.Overwrite}))
		case 10:
			return f.SetBool(&m.ExpandedFromGlob)
		}
		return nil
	})
	return m, err
}

// decodeBools decodes a message made of bool fields into dsts by number.
func decodeBools(f pbwire.Field, dsts map[int]*bool) error {
	b, err := f.Message()
	if err != nil {
		return err
	}
	return pbwire.Walk(b, func(g pbwire.Field) error {
		if dst, ok := dsts[int(g.Num)]; ok {
			return g.SetBool(dst)
		}
		return nil
	})
}

// decodeMetricSummary decodes MetricSummary into the names of its set flags.
func decodeMetricSummary(f pbwire.Field, m *Metric) error {
	b, err := f.Message()
	if err != nil {
		return err
	}
	return pbwire.Walk(b, func(g pbwire.Field) error {
		if int(g.Num) >= len(metricSummaryNames) || metricSummaryNames[g.Num] == "" {
			return nil
		}
		set, err := g.Bool()
		if set {
			m.Summary = append(m.Summary, metricSummaryNames[g.Num])
		}
		return err
	})
}

// decodeArtifact decodes an ArtifactRecord.
func decodeArtifact(b []byte) (*Artifact, error) {
	a := &Artifact{}
	strs := map[int]*string{1: &a.RunID, 2: &a.Project, 3: &a.Entity, 4: &a.Type, 5: &a.Name, 6: &a.Digest,
		7: &a.Description, 8: &a.Metadata, 15: &a.ClientID, 16: &a.SequenceClientID, 17: &a.BaseID}
	err := pbwire.Walk(b, func(f pbwire.Field) error {
		if dst, ok := strs[int(f.Num)]; ok {
			return f.SetStr(dst)
		}
		switch f.Num {
		case 11:
			return f.AppendStr(&a.Aliases)
		case 12:
			return within("manifest", decodeManifest(f, a))
		case 19:
			return f.AppendStr(&a.Tags)
		}
		return nil
	})
	return a, err
}

// decodeManifest decodes an ArtifactManifest into a.
func decodeManifest(f pbwire.Field, a *Artifact) error {
	b, err := f.Message()
	if err != nil {
		return err
	}
	return pbwire.Walk(b, func(g pbwire.Field) error {
		switch g.Num {
		case 1:
			return g.SetInt32(&a.ManifestVersion)
		case 2:
			return g.SetStr(&a.StoragePolicy)
		case 5:
			return g.SetStr(&a.ManifestFile)
		case 4:
		default:
			return nil
		}
		eb, err := g.Message()
		if err != nil {
			return err
		}
		var e ArtifactEntry
		err = pbwire.Walk(eb, func(h pbwire.Field) error {
			switch h.Num {
			case 1:
				return h.SetStr(&e.Path)
			case 2:
				return h.SetStr(&e.Digest)
			case 3:
				return h.SetStr(&e.Ref)
			case 4:
				return h.SetInt64(&e.Size)
			case 5:
				return h.SetStr(&e.Mimetype)
			case 6:
				return h.SetStr(&e.LocalPath)
			case 7:
				return h.SetStr(&e.BirthArtifactID)
			}
			return nil
		})
		a.Entries = append(a.Entries, e)
		return within("contents", err)
	})
}

// decodeUseArtifact decodes a UseArtifactRecord.
func decodeUseArtifact(b []byte) (*UseArtifact, error) {
	u := &UseArtifact{}
	err := pbwire.Walk(b, func(f pbwire.Field) error {
		switch f.Num {
		case 1:
			return f.SetStr(&u.ID)
		case 2:
			return f.SetStr(&u.Type)
		case 3:
			return f.SetStr(&u.Name)
		case 4:
			pb, err := f.Message()
			if err != nil {
				return err
			}
			return within("partial", pbwire.Walk(pb, func(g pbwire.Field) error {
				if g.Num == 1 {
					return g.SetStr(&u.JobName)
				}
				return nil
			}))
		}
		return nil
	})
	return u, err
}

// decodeTBRecord decodes a TBRecord.
func decodeTBRecord(b []byte) (*TBRecord, error) {
	t := &TBRecord{}
	err := pbwire.Walk(b, func(f pbwire.Field) error {
		switch f.Num {
		case 1:
			return f.SetStr(&t.LogDir)
		case 2:
			return f.SetBool(&t.Save)
		case 3:
			return f.SetStr(&t.RootDir)
		}
		return nil
	})
	return t, err
}

// decodeAlert decodes an AlertRecord.
func decodeAlert(b []byte) (*Alert, error) {
	a := &Alert{}
	err := pbwire.Walk(b, func(f pbwire.Field) error {
		switch f.Num {
		case 1:
			return f.SetStr(&a.Title)
		case 2:
			return f.SetStr(&a.Text)
		case 3:
			return f.SetStr(&a.Level)
		case 4:
			return f.SetInt64(&a.WaitDuration)
		}
		return nil
	})
	return a, err
}
