package wandbcloud

import (
	"slices"
	"strings"
	"time"

	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sources"
)

var _ sources.GapLister = (*Source)(nil)

// KnownGaps are what W&B's API cannot give that a local run folder (or a
// copy of one) holds, so that `check wandb:FOLDER wandb+https://…`
// passes when everything the API can give matches. Each matches only a
// difference in which the cloud's side is the one lacking (or coarser):
//
//   - times finer than a second: the API's createdAt and heartbeatAt are
//     whole seconds (a run's start and end, a project's creation time
//     match when equal to the second);
//   - the number of segments of a resumed run (tag wandb.segments): the
//     server merges them;
//   - the times of console lines: W&B's server stamps a line when it
//     receives it, so a run synced after it ran has its lines stamped at
//     sync time; check compares the lines one by one, text, stream and
//     order exactly, and offers each line that differs only in its time
//     (sources.ConsoleTimes, the two times in RFC 3339): the gap matches
//     a line the other side has without a time, or whose time is not
//     later than the server's (but for ConsoleSkew);
//   - the version number of an artifact version logged offline: the run
//     folder has none (the server numbers it on sync), the cloud has;
//   - the alias latest, which the server moves to the newest version of a
//     name where the run folder's records keep it on every version logged;
//   - a logged version's id: the server's own, the SDK's client id in the
//     run folder;
//   - an artifact entry whose content neither side holds (the run folder
//     lost its staged copy, so the server never got it): named on both
//     sides, for different reasons.
func (s *Source) KnownGaps() []sources.Gap {
	return []sources.Gap{
		{Name: "the W&B API gives times to the second", Match: func(what, this, other string) bool {
			if what != "field Start" && what != "field End" && what != "experiment creation time" {
				return false
			}
			a, err1 := time.Parse(timeShown, this)
			b, err2 := time.Parse(timeShown, other)
			return err1 == nil && err2 == nil && a.Equal(b.Truncate(time.Second)) && !a.Equal(b)
		}},
		{Name: "the W&B server merges a resumed run's segments", Match: func(what, this, _ string) bool {
			return this == "" && strings.HasPrefix(what, "tag "+TagPrefix+"segments ")
		}},
		{Name: "the W&B server stamps console lines when it receives them", Match: func(what, this, other string) bool {
			if what != sources.ConsoleTimes {
				return false
			}
			// One line whose text, stream and place agree: the server's
			// time is when it received the line, so the other side's (when
			// the line was written) is not later, but for clock skew; a
			// line without a time (output.log) has none to compare.
			received, err := time.Parse(time.RFC3339Nano, this)
			if err != nil {
				return false
			}
			if other == "" {
				return true
			}
			written, err := time.Parse(time.RFC3339Nano, other)
			return err == nil && !written.After(received.Add(ConsoleSkew))
		}},
		{Name: "a run folder has no version number for an artifact logged offline", Match: func(what, this, other string) bool {
			return strings.HasPrefix(what, "artifact "+string(schema.ArtifactLogged)+" ") && strings.HasSuffix(what, " Version") &&
				other == "" && strings.HasPrefix(this, "v")
		}},
		{Name: "the W&B server moves the alias latest to the newest version", Match: func(what, this, other string) bool {
			if !strings.HasPrefix(what, "artifact "+string(schema.ArtifactLogged)+" ") || !strings.HasSuffix(what, " Aliases") {
				return false
			}
			drop := func(s string) []string {
				return slices.DeleteFunc(strings.Fields(strings.Trim(s, "[]")), func(a string) bool { return a == "latest" })
			}
			return slices.Equal(drop(this), drop(other))
		}},
		{Name: "the W&B server names an artifact version by its own id, a run folder by the SDK's client id", Match: func(what, this, other string) bool {
			return strings.HasPrefix(what, "artifact "+string(schema.ArtifactLogged)+" ") && strings.HasSuffix(what, " ID") && this != "" && other != ""
		}},
		{Name: "an artifact file whose content neither side holds", Match: func(what, this, other string) bool {
			return strings.HasPrefix(what, "file "+schema.ArtifactFolder+"/") &&
				strings.HasPrefix(this, "-1 bytes problem: ") && strings.HasPrefix(other, "-1 bytes problem: ")
		}},
	}
}

// ConsoleSkew is how much later than the server's time a console line's
// time on the other side may be and still be the known gap "the W&B
// server stamps console lines when it receives them": the clocks of the
// writer and of the server may differ by that much.
const ConsoleSkew = time.Minute

// timeShown is how check shows a time (time.Time.String).
const timeShown = "2006-01-02 15:04:05.999999999 -0700 MST"
