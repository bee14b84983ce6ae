package wandbfile

import (
	"time"

	"github.com/runferry/runferry/internal/pbwire"
)

// Run is a RunRecord: the run's identity and metadata. A resumed run has one
// per segment (`.wandb` file).
type Run struct {
	RunID       string    `json:"run_id"`
	Entity      string    `json:"entity,omitempty"`
	Project     string    `json:"project,omitempty"`
	Config      *Config   `json:"config,omitempty"`  // initial config passed to wandb.init
	Summary     *Summary  `json:"summary,omitempty"` // initial summary, when resuming
	Group       string    `json:"group,omitempty"`
	JobType     string    `json:"job_type,omitempty"`
	DisplayName string    `json:"display_name,omitempty"`
	Notes       string    `json:"notes,omitempty"`
	Tags        []string  `json:"tags,omitempty"`
	Settings    []Item    `json:"settings,omitempty"` // SettingsRecord items (key, value_json)
	SweepID     string    `json:"sweep_id,omitempty"`
	Host        string    `json:"host,omitempty"`
	StartStep   int64     `json:"starting_step,omitempty"`
	StorageID   string    `json:"storage_id,omitempty"`
	StartTime   time.Time `json:"start_time,omitzero"`
	Resumed     bool      `json:"resumed,omitempty"`
	// Runtime is the runtime in seconds of the segments before this one.
	Runtime     int32        `json:"runtime,omitempty"`
	GitRemote   string       `json:"git_remote,omitempty"`
	GitCommit   string       `json:"git_commit,omitempty"`
	Forked      bool         `json:"forked,omitempty"`
	BranchPoint *BranchPoint `json:"branch_point,omitempty"`
}

// BranchPoint is where a forked or rewound run branches off another run.
type BranchPoint struct {
	Run    string  `json:"run"`
	Value  float64 `json:"value"`
	Metric string  `json:"metric"`
}

// Exit is a RunExitRecord: how the run (segment) ended.
type Exit struct {
	// ExitCode is 0 for success; anything else means the run failed.
	ExitCode int32 `json:"exit_code"`
	// Runtime is the run's total runtime in seconds.
	Runtime int32 `json:"runtime"`
	// NotComplete asks to keep the run in the running state (0.26.1+).
	NotComplete bool `json:"not_complete,omitempty"`
}

// Header is a HeaderRecord, the first record of a file. Before SDK 0.16.3 it
// is empty.
type Header struct {
	// Producer is the writing SDK, "<version>+<commit>".
	Producer    string `json:"producer,omitempty"`
	MinConsumer string `json:"min_consumer,omitempty"`
}

// Telemetry holds the version fields of a TelemetryRecord; the rest
// (imports, features, ...) is skipped.
type Telemetry struct {
	PythonVersion string `json:"python_version,omitempty"`
	CLIVersion    string `json:"cli_version,omitempty"`
	CoreVersion   string `json:"core_version,omitempty"`
	Platform      string `json:"platform,omitempty"`
}

// Environment is an EnvironmentRecord (SDK 0.21+): the machine and program
// the run ran on, as in wandb-metadata.json. Hardware details (disks, GPUs,
// memory, Slurm) are skipped.
type Environment struct {
	OS              string    `json:"os,omitempty"`
	Python          string    `json:"python,omitempty"`
	StartedAt       time.Time `json:"started_at,omitzero"`
	Docker          string    `json:"docker,omitempty"`
	Args            []string  `json:"args,omitempty"`
	Program         string    `json:"program,omitempty"`
	CodePath        string    `json:"code_path,omitempty"`
	CodePathLocal   string    `json:"code_path_local,omitempty"`
	GitRemote       string    `json:"git_remote,omitempty"`
	GitCommit       string    `json:"git_commit,omitempty"`
	Email           string    `json:"email,omitempty"`
	Root            string    `json:"root,omitempty"`
	Host            string    `json:"host,omitempty"`
	Username        string    `json:"username,omitempty"`
	Executable      string    `json:"executable,omitempty"`
	Colab           string    `json:"colab,omitempty"`
	CPUCount        uint64    `json:"cpu_count,omitempty"`
	CPUCountLogical uint64    `json:"cpu_count_logical,omitempty"`
	GPUType         string    `json:"gpu_type,omitempty"`
	GPUCount        uint64    `json:"gpu_count,omitempty"`
	CUDAVersion     string    `json:"cuda_version,omitempty"`
	WriterID        string    `json:"writer_id,omitempty"`
}

// decodeRun decodes a RunRecord.
func decodeRun(b []byte) (*Run, error) {
	r := &Run{}
	err := pbwire.Walk(b, func(f pbwire.Field) error {
		switch f.Num {
		case 1:
			return f.SetStr(&r.RunID)
		case 2:
			return f.SetStr(&r.Entity)
		case 3:
			return f.SetStr(&r.Project)
		case 4:
			return within("config", decodeEmbedded(f, decodeConfig, &r.Config))
		case 5:
			return within("summary", decodeEmbedded(f, decodeSummary, &r.Summary))
		case 6:
			return f.SetStr(&r.Group)
		case 7:
			return f.SetStr(&r.JobType)
		case 8:
			return f.SetStr(&r.DisplayName)
		case 9:
			return f.SetStr(&r.Notes)
		case 10:
			return f.AppendStr(&r.Tags)
		case 11:
			return within("settings", decodeSettings(f, &r.Settings))
		case 12:
			return f.SetStr(&r.SweepID)
		case 13:
			return f.SetStr(&r.Host)
		case 14:
			return f.SetInt64(&r.StartStep)
		case 16:
			return f.SetStr(&r.StorageID)
		case 17:
			return f.SetTime(&r.StartTime)
		case 18:
			return f.SetBool(&r.Resumed)
		case 20:
			return f.SetInt32(&r.Runtime)
		case 21:
			return within("git", decodeGit(f, &r.GitRemote, &r.GitCommit))
		case 22:
			return f.SetBool(&r.Forked)
		case 23:
			return within("branch_point", decodeEmbedded(f, decodeBranchPoint, &r.BranchPoint))
		}
		return nil
	})
	return r, err
}

// decodeEmbedded decodes an embedded message field with decode into *dst.
func decodeEmbedded[T any](f pbwire.Field, decode func([]byte) (*T, error), dst **T) error {
	b, err := f.Message()
	if err != nil {
		return err
	}
	*dst, err = decode(b)
	return err
}

// decodeSettings decodes a SettingsRecord's items (1: repeated item).
func decodeSettings(f pbwire.Field, items *[]Item) error {
	b, err := f.Message()
	if err != nil {
		return err
	}
	return pbwire.Walk(b, func(g pbwire.Field) error {
		if g.Num == 1 {
			return appendItem(g, items)
		}
		return nil
	})
}

// decodeGit decodes a GitRepoRecord (1 remote_url, 2 commit).
func decodeGit(f pbwire.Field, remote, commit *string) error {
	b, err := f.Message()
	if err != nil {
		return err
	}
	return pbwire.Walk(b, func(g pbwire.Field) error {
		switch g.Num {
		case 1:
			return g.SetStr(remote)
		case 2:
			return g.SetStr(commit)
		}
		return nil
	})
}

// decodeBranchPoint decodes a BranchPoint.
func decodeBranchPoint(b []byte) (*BranchPoint, error) {
	p := &BranchPoint{}
	err := pbwire.Walk(b, func(f pbwire.Field) error {
		switch f.Num {
		case 1:
			return f.SetStr(&p.Run)
		case 2:
			return f.SetDouble(&p.Value)
		case 3:
			return f.SetStr(&p.Metric)
		}
		return nil
	})
	return p, err
}

// decodeExit decodes a RunExitRecord.
func decodeExit(b []byte) (*Exit, error) {
	e := &Exit{}
	err := pbwire.Walk(b, func(f pbwire.Field) error {
		switch f.Num {
		case 1:
			return f.SetInt32(&e.ExitCode)
		case 2:
			return f.SetInt32(&e.Runtime)
		case 3:
			return f.SetBool(&e.NotComplete)
		}
		return nil
	})
	return e, err
}

// decodeHeader decodes a HeaderRecord (1: VersionInfo {1 producer,
// 2 min_consumer}).
func decodeHeader(b []byte) (*Header, error) {
	h := &Header{}
	err := pbwire.Walk(b, func(f pbwire.Field) error {
		if f.Num != 1 {
			return nil
		}
		info, err := f.Message()
		if err != nil {
			return err
		}
		return within("version_info", pbwire.Walk(info, func(g pbwire.Field) error {
			switch g.Num {
			case 1:
				return g.SetStr(&h.Producer)
			case 2:
				return g.SetStr(&h.MinConsumer)
			}
			return nil
		}))
	})
	return h, err
}

// decodeTelemetry decodes the version fields of a TelemetryRecord.
func decodeTelemetry(b []byte) (*Telemetry, error) {
	t := &Telemetry{}
	err := pbwire.Walk(b, func(f pbwire.Field) error {
		switch f.Num {
		case 4:
			return f.SetStr(&t.PythonVersion)
		case 5:
			return f.SetStr(&t.CLIVersion)
		case 12:
			return f.SetStr(&t.CoreVersion)
		case 13:
			return f.SetStr(&t.Platform)
		}
		return nil
	})
	return t, err
}

// decodeEnvironment decodes an EnvironmentRecord.
func decodeEnvironment(b []byte) (*Environment, error) {
	e := &Environment{}
	strs := map[int]*string{
		1: &e.OS, 2: &e.Python, 4: &e.Docker, 6: &e.Program, 7: &e.CodePath,
		8: &e.CodePathLocal, 10: &e.Email, 11: &e.Root, 12: &e.Host, 13: &e.Username,
		14: &e.Executable, 15: &e.Colab, 18: &e.GPUType, 25: &e.CUDAVersion, 199: &e.WriterID,
	}
	err := pbwire.Walk(b, func(f pbwire.Field) error {
		if dst, ok := strs[int(f.Num)]; ok {
			return f.SetStr(dst)
		}
		switch f.Num {
		case 3:
			return f.SetTime(&e.StartedAt)
		case 5:
			return f.AppendStr(&e.Args)
		case 9:
			return within("git", decodeGit(f, &e.GitRemote, &e.GitCommit))
		case 16:
			return f.SetUint64(&e.CPUCount)
		case 17:
			return f.SetUint64(&e.CPUCountLogical)
		case 19:
			return f.SetUint64(&e.GPUCount)
		}
		return nil
	})
	return e, err
}
