package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/runferry/runferry/internal/wandbfile"
)

func (a *app) inspectCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "inspect FILE.wandb",
		Short: "Decode a W&B .wandb transaction log, one JSON line per record",
		Long: `Decode a W&B .wandb file (the binary log in every run folder) and print one
JSON line per record with its byte offset, kind and decoded fields. Damage
(bad checksums, truncation, garbage) is printed as {"offset":N,"damage":...}
lines at the block offset where it was found; reading resumes at the next
block. Exits 3 when the file is damaged.`,
		Example: "  runferry inspect wandb/run-20240301_120000-abc123/run-abc123.wandb | head",
		Args:    exactArgs(1, "FILE.wandb"),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			damaged, err := wandbfile.Inspect(a.stdout, f, args[0])
			if err != nil {
				return fmt.Errorf("inspect: %w", err)
			}
			if damaged > 0 {
				fmt.Fprintf(a.stderr, "runferry: %s: %d damaged places (the \"damage\" lines give their offsets)\n", args[0], damaged)
				a.exit = exitRunsFailed
			}
			return nil
		},
	}
}
