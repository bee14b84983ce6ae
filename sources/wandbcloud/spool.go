package wandbcloud

import (
	"bufio"
	"encoding/json"
	"fmt"
	"iter"
	"os"

	"github.com/runferry/runferry/internal/fault"
	"github.com/runferry/runferry/schema"
)

// One history scan serves both Metrics and RichValues: while Metrics reads
// a run's history, its rich values are kept aside (in memory up to
// spoolInMemory values, then in a temporary file), and once the scan
// completes they are what the next RichValues of that run yields, without
// another request. RichValues of a run whose Metrics did not complete (or
// was not called) reads the history itself. Close removes what is left.

// spoolInMemory is how many rich values a spool keeps in memory.
const spoolInMemory = 1000

// spool holds one run's rich values.
type spool struct {
	mem  []schema.RichValue
	file *os.File
	enc  *json.Encoder
	buf  *bufio.Writer
	n    int
}

func (sp *spool) add(dir string, v schema.RichValue) error {
	sp.n++
	if sp.file == nil && len(sp.mem) < spoolInMemory {
		sp.mem = append(sp.mem, v)
		return nil
	}
	if sp.file == nil {
		f, err := os.CreateTemp(dir, "runferry-wandb-rich-*.jsonl")
		if err != nil {
			return fault.Fatal(fmt.Errorf("wandb: temporary file: %w", err))
		}
		sp.file, sp.buf = f, bufio.NewWriter(f)
		sp.enc = json.NewEncoder(sp.buf)
	}
	if err := sp.enc.Encode(v); err != nil {
		return fault.Fatal(fmt.Errorf("wandb: %s: %w", sp.file.Name(), err))
	}
	return nil
}

// values yields the spooled values, PageSize at a time, in the order
// added; the spool is removed afterwards.
func (sp *spool) values() iter.Seq2[[]schema.RichValue, error] {
	return func(yield func([]schema.RichValue, error) bool) {
		defer sp.remove()
		page := sp.mem
		if sp.file != nil {
			if err := sp.buf.Flush(); err != nil {
				yield(nil, fault.Fatal(fmt.Errorf("wandb: %s: %w", sp.file.Name(), err)))
				return
			}
			if _, err := sp.file.Seek(0, 0); err != nil {
				yield(nil, fault.Fatal(fmt.Errorf("wandb: %s: %w", sp.file.Name(), err)))
				return
			}
			dec := json.NewDecoder(bufio.NewReader(sp.file))
			for dec.More() {
				if len(page) >= PageSize {
					if !yield(page, nil) {
						return
					}
					page = nil
				}
				var v schema.RichValue
				if err := dec.Decode(&v); err != nil {
					yield(nil, fault.Fatal(fmt.Errorf("wandb: %s: %w", sp.file.Name(), err)))
					return
				}
				page = append(page, v)
			}
		}
		for len(page) > 0 {
			n := min(len(page), PageSize)
			if !yield(page[:n], nil) {
				return
			}
			page = page[n:]
		}
	}
}

func (sp *spool) remove() {
	if sp.file != nil {
		sp.file.Close()
		os.Remove(sp.file.Name())
		sp.file = nil
	}
	sp.mem = nil
}

// keepSpool records sp as run's rich values, replacing an older one.
func (s *Source) keepSpool(run string, sp *spool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.spools == nil {
		s.spools = map[string]*spool{}
	}
	if old := s.spools[run]; old != nil {
		old.remove()
	}
	s.spools[run] = sp
}

// takeSpool returns (and forgets) run's spooled rich values.
func (s *Source) takeSpool(run string) *spool {
	s.mu.Lock()
	defer s.mu.Unlock()
	sp := s.spools[run]
	delete(s.spools, run)
	return sp
}
