package tensorboard

import (
	"fmt"
	"slices"

	"github.com/runferry/runferry/internal/location"
)

// System is the Ref.System of everything this source yields.
const System = "tensorboard"

// TagPrefix starts the run tags that hold what has no schema field.
const TagPrefix = "tensorboard."

// Config is the source's configuration, parsed from a location.
type Config struct {
	// Root is the folder to read: a log folder holding event files, or a
	// tree of them.
	Root string
	// Experiment names the experiment; "" means Root's base name.
	Experiment string
}

var options = []location.Option{
	{
		Name: "experiment",
		Help: "Name of the experiment the runs go into (default: the name of the folder PATH names). " +
			"The experiment's identity stays the folder, so two trees given the same name stay two experiments.",
	},
}

// Description documents the tensorboard: location.
func Description() location.Description {
	return location.Description{
		Scheme:  "tensorboard",
		Kind:    location.PathKind,
		Syntax:  "tensorboard:PATH",
		Summary: "TensorBoard event files (events.out.tfevents.*) in a log folder or a tree of them",
		Help: `Reads the event files that TensorBoard writers leave (PyTorch's and tensorboardX's
SummaryWriter, Keras' TensorBoard callback, Hugging Face Trainer, Lightning,
Stable-Baselines3), with no TensorFlow. Every folder under PATH that holds event
files is a run named by its path relative to PATH (several files in one folder
are one run, read in the order of their first wall time); Keras' train/ and
validation/ subfolders belong to the run above them, their names prefixed to
their keys (train/epoch_loss), as TensorBoard shows them (a key the run's own
folder logs too, train/loss, is "train folder/loss" for the subfolder's
series, counted under "not as given"). PATH is one experiment.

Scalars (simple_value and TF2 tensor scalars of any number type) become metrics
with their step and wall time; the hparams plugin's session start and end give
params, status and times; text that is a JSON object (a hyperparameter dump)
gives params named TAG.KEY, other text becomes log lines; histograms and
images become rich values, the images files under media/images/. What it
cannot map (audio, graphs, other plugins) is counted by kind in the report; a
truncated or damaged event file is read up to the damage, which is named on
the run by file and offset.`,
		Options: options,
		Example: "runferry copy tensorboard:./runs mlflow+http://localhost:5000",
	}
}

// ParseConfig reads a Config from a location.
func ParseConfig(loc location.Location) (Config, error) {
	cfg := Config{Root: loc.Path, Experiment: loc.Query("experiment")}
	if loc.URL != nil {
		for name := range loc.URL.Query() {
			if !slices.ContainsFunc(options, func(o location.Option) bool { return o.Name == name }) {
				return Config{}, fmt.Errorf("unknown option %q (tensorboard: takes experiment)", name)
			}
		}
	}
	if cfg.Root == "" {
		return Config{}, fmt.Errorf("empty path")
	}
	return cfg, nil
}
