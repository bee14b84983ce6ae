package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/runferry/runferry/internal/tfevents"
	"github.com/runferry/runferry/internal/wandbfile"
	"github.com/runferry/runferry/sources/mlflowfile"
)

func (a *app) inspectCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "inspect FILE.wandb|EVENTFILE|MLRUNS/.../metrics/KEY",
		Short: "Decode a W&B .wandb log, a TensorBoard event file or an MLflow metric file, one JSON line per record",
		Long: `Decode a W&B .wandb file (the binary log in every run folder) and print one
JSON line per record with its byte offset, kind and decoded fields. Damage
(bad checksums, truncation, garbage) is printed as {"offset":N,"damage":...}
lines at the block offset where it was found; reading resumes at the next
block. Exits 3 when the file is damaged.

A TensorBoard event file (a name holding "tfevents") is printed one event per
line: offset, wall time, step and the summary values (tag, kind, plugin and
the value: numbers and strings of tensors, sizes of images, histograms and
audio). A record with a bad data checksum is a damage line and reading goes
on; a bad length checksum or a cut tail ends the file.

A metric file of an MLflow file store (a file below a metrics/ folder of a
run or of a logged model in mlruns/) is printed one point per line with its
line number, timestamp, value and step (and run and dataset where the line
names them); a line that does not parse is a damage line naming why.`,
		Example: "  runferry inspect wandb/run-20240301_120000-abc123/run-abc123.wandb | head\n" +
			"  runferry inspect runs/exp1/events.out.tfevents.1700000000.host.123.0 | head\n" +
			"  runferry inspect mlruns/0/0a1b2c3d4e5f/metrics/loss | head",
		Args: exactArgs(1, "FILE.wandb|EVENTFILE|METRICFILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			inspect := wandbfile.Inspect
			switch {
			case strings.Contains(filepath.Base(args[0]), "tfevents"):
				inspect = tfevents.Inspect
			case mlflowfile.IsMetricFile(args[0]):
				inspect = mlflowfile.Inspect
			}
			damaged, err := inspect(a.stdout, f, args[0])
			if err != nil {
				return fmt.Errorf("inspect: %w", err)
			}
			if damaged > 0 {
				fmt.Fprintf(a.stderr, "runferry: %s: %s (the \"damage\" lines give their offsets)\n", args[0], counted(damaged, "damaged place"))
				a.exit = exitRunsFailed
			}
			return nil
		},
	}
}
