package wandbdir

import (
	"fmt"
	"slices"

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
}

// options are the location options, documented once for help and parsing.
var options = []location.Option{
	{
		Name: "entity",
		Help: "W&B entity (user or team) assumed for runs that name none. Offline runs usually " +
			"have no entity until synced; with this option their experiment and run origins " +
			"become ENTITY/PROJECT and ENTITY/PROJECT/RUN_ID, as for online runs.",
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
and status come from it, run files (files/) become artifacts. A damaged or
truncated log is read up to the damage, and the damage is reported on the run.

One experiment per W&B entity/project (origin ENTITY/PROJECT, or PROJECT for
offline runs without an entity); one run per run id (origin ENTITY/PROJECT/ID):
folders of a resumed run are merged in start-time order.`,
		Options: options,
		Example: "runferry copy wandb:./wandb parquet:./archive",
	}
}

// ParseConfig reads a Config from a location.
func ParseConfig(loc location.Location) (Config, error) {
	cfg := Config{Root: loc.Path, Entity: loc.Query("entity")}
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
