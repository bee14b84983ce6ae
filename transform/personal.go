package transform

import (
	"slices"

	"github.com/runferry/runferry/schema"
)

// DropPersonal leaves personal data out of runs: the host name a run ran
// on (Run.Host) and the e-mail address of its user (the tag wandb.email,
// as the W&B sources name it). The CLI applies it on the way into a
// destination whose contents every user of it sees (sinks.SharedView: an
// MLflow tracking server) unless --keep-personal asks for the data; an
// archive keeps what the source had. Recorded with the run like every
// step, so that `check` expects the data absent.
type DropPersonal struct{}

// PersonalTags are the tag keys DropPersonal leaves out.
var PersonalTags = []string{"wandb.email"}

const dropPersonalValue = "host,email"

// Experiment changes nothing.
func (DropPersonal) Experiment(e schema.Experiment) schema.Experiment { return e }

// Metrics changes nothing.
func (DropPersonal) Metrics(page []schema.Metric) []schema.Metric { return page }

// Run clears r.Host and removes the personal tags, naming each.
func (DropPersonal) Run(r schema.Run) (schema.Run, []string) {
	var left []string
	if r.Host != "" {
		r.Host = ""
		left = append(left, "host name")
	}
	if slices.ContainsFunc(r.Tags, func(t schema.Tag) bool { return slices.Contains(PersonalTags, t.Key) }) {
		r.Tags = slices.DeleteFunc(slices.Clone(r.Tags), func(t schema.Tag) bool {
			if slices.Contains(PersonalTags, t.Key) {
				left = append(left, "e-mail address (tag "+t.Key+")")
				return true
			}
			return false
		})
	}
	return r, left
}

func (DropPersonal) String() string { return "drop-personal=" + dropPersonalValue }
