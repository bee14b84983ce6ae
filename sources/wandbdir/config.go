package wandbdir

import (
	"fmt"
	"slices"
	"time"

	"github.com/runferry/runferry/internal/location"
)

// System is the Ref.System of everything this source yields.
const System = "wandb"

// Config is the source's configuration, parsed from a location.
type Config struct {
	// Root is the folder to read: a wandb/ folder, one run folder, or any
	// tree holding run folders.
	Root string
	// Entity is assumed for runs whose run records name none (offline
	// runs), so that their origins match what W&B's cloud would call them.
	Entity string
	// CrashedAfter is how long a run whose log holds no exit record may
	// have been silent before it counts as crashed (status FAILED, tag
	// wandb.state=crashed) rather than live (RUNNING). Zero means
	// DefaultCrashedAfter.
	CrashedAfter time.Duration
	// ArtifactCache is the wandb SDK's artifact cache folder, searched by
	// MD5 for artifact entries whose staged copy is gone. "" means
	// defaultArtifactCache ($WANDB_CACHE_DIR/artifacts, else the user's
	// cache folder's wandb/artifacts).
	ArtifactCache string
}

// DefaultCrashedAfter is the silence after which a run without an exit
// record counts as crashed. W&B marks a run crashed once its heartbeats
// stop, "after a brief retry period", and publishes no number; the pre-0.10
// SDK rewrote heartbeatAt every 15 s, so five minutes is many missed beats
// while a stalled but live run is rarely silent that long. Users who know
// better set the crashed-after option.
const DefaultCrashedAfter = 5 * time.Minute

// options are the location options, documented once for help and parsing.
var options = []location.Option{
	{
		Name: "entity",
		Help: "W&B entity (user or team) assumed for runs that name none. Offline runs usually " +
			"have no entity until synced; with this option their experiment and run origins " +
			"become ENTITY/PROJECT and ENTITY/PROJECT/RUN_ID, as for online runs, instead of naming the " +
			"folder that holds them (FOLDER#PROJECT/RUN_ID), so they no longer depend on where the runs lie.",
	},
	{
		Name: "crashed-after",
		Help: "How long a run whose log has no exit record may have been silent before it counts " +
			"as crashed, as W&B shows it once its heartbeat stops (a Go duration such as 90s, 10m, " +
			"2h; default 5m). A run is live only while both its own records (their latest time: " +
			"history, system metrics, console output, the run's start; pre-0.10 folders also " +
			"heartbeatAt) and its log file (its modification time; pre-0.10 folders: their " +
			"files' times) are newer than that, so a crashed run in a folder copied without its " +
			"times (cp -r, rsync without -t, unzip) is crashed. A crashed run is FAILED with the " +
			"tag wandb.state=crashed; a live one is RUNNING with wandb.state=running.",
	},
	{
		Name: "artifact-cache",
		Help: "The wandb SDK's artifact cache folder, searched (obj/md5/...) for the content of " +
			"artifact entries whose staged copy (the path the run's log records) is gone. Default: " +
			"$WANDB_CACHE_DIR/artifacts, else ~/.cache/wandb/artifacts.",
	},
}

// Description documents the wandb: location for help, `runferry backends`
// and the README.
func Description() location.Description {
	return location.Description{
		Scheme:  "wandb",
		Kind:    location.PathKind,
		Syntax:  "wandb:PATH",
		Summary: "W&B run folders on disk (a wandb/ folder, one run folder, or a tree holding many)",
		Help: `Reads the run folders the wandb SDK writes (wandb/run-*, wandb/offline-run-*,
and dryrun-* folders from SDKs before 0.10), found by walking PATH; symlinked
folders such as latest-run are not followed. The binary .wandb log is the source
of truth: history, system metrics, config, summary, console output, tags, notes
and status come from it, run files (files/) become artifacts. W&B Artifacts a
run logged (offline log_artifact) travel as files under
wandb-artifacts/<name>/<digest>/ beside their manifest.json, the content taken
from the SDK's staged copy, its artifact cache or a run file of the same MD5,
and every entry not found is named as a file not copied; the versions it used
are listed in
wandb-used-artifacts.json. A damaged or
truncated log is read up to the damage, and the damage is reported on the run.

One experiment per W&B entity/project (origin ENTITY/PROJECT; for offline runs
without an entity FOLDER#PROJECT, FOLDER being the absolute, symlink-free path
of the folder holding the run folders); one run per run id (origin
ENTITY/PROJECT/ID, or FOLDER#PROJECT/ID): folders of a resumed run are merged
in start-time order.`,
		Options: options,
		Example: "runferry copy wandb:./wandb parquet:./archive",
	}
}

// ParseConfig reads a Config from a location.
func ParseConfig(loc location.Location) (Config, error) {
	cfg := Config{Root: loc.Path, Entity: loc.Query("entity"), ArtifactCache: loc.Query("artifact-cache")}
	if loc.URL != nil {
		for name := range loc.URL.Query() {
			if !slices.ContainsFunc(options, func(o location.Option) bool { return o.Name == name }) {
				return Config{}, fmt.Errorf("unknown option %q (wandb: takes %s)", name, optionNames())
			}
		}
	}
	if cfg.Root == "" {
		return Config{}, fmt.Errorf("empty path")
	}
	if v := loc.Query("crashed-after"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return Config{}, fmt.Errorf("crashed-after=%q: want a positive duration such as 90s, 10m or 2h", v)
		}
		cfg.CrashedAfter = d
	}
	return cfg, nil
}

func optionNames() string {
	var s string
	for i, o := range options {
		if i > 0 {
			s += ", "
		}
		s += o.Name
	}
	return s
}
