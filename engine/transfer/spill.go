package transfer

import (
	"bufio"
	"bytes"
	"encoding/gob"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"sync"
)

// A job of many runs keeps its run results out of memory when
// Options.SpillRuns is set: each result, once added, is encoded (gob) into
// a temporary file removed from its folder at once, and Results,
// WriteJSON and the totals read them back from there, in the order the
// report lists them (the plan's results, then the transferred runs', as
// they ended). Held in Report.Runs, they were about 0.4 KB a run to the
// end of the job (docs/WANDB-CLOUD.md gap 6).

// resultFile is one sequence of run results in an unlinked temporary file.
// Its methods are safe for concurrent use.
type resultFile struct {
	mu  sync.Mutex
	f   *os.File
	w   *bufio.Writer
	enc *gob.Encoder
	n   int   // results written
	err error // the first write error; the results are then incomplete
}

func newResultFile() (*resultFile, error) {
	f, err := os.CreateTemp("", "runferry-results-*")
	if err != nil {
		return nil, fmt.Errorf("run results: %w", err)
	}
	// Removed at once: the open file is all that holds it, so nothing is
	// left behind however the process ends.
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, fmt.Errorf("run results: %w", err)
	}
	w := bufio.NewWriterSize(f, 64<<10)
	return &resultFile{f: f, w: w, enc: gob.NewEncoder(w)}, nil
}

// add appends r.
func (s *resultFile) add(r RunResult) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return
	}
	if err := s.enc.Encode(&r); err != nil {
		s.err = fmt.Errorf("run results: %w", err)
		return
	}
	s.n++
}

// each yields the results written so far, in order; a write or read error
// is yielded last.
func (s *resultFile) each(yield func(RunResult, error) bool) bool {
	s.mu.Lock()
	n, err := s.n, s.err
	if err == nil {
		if ferr := s.w.Flush(); ferr != nil {
			s.err, err = fmt.Errorf("run results: %w", ferr), s.err
		}
	}
	var size int64
	if err == nil {
		if st, serr := s.f.Stat(); serr != nil {
			err = fmt.Errorf("run results: %w", serr)
		} else {
			size = st.Size()
		}
	}
	s.mu.Unlock()
	if err != nil {
		return yield(RunResult{}, err)
	}
	// ReadAt leaves the file's offset, where add writes, alone.
	dec := gob.NewDecoder(bufio.NewReaderSize(io.NewSectionReader(s.f, 0, size), 64<<10))
	for range n {
		var r RunResult
		if err := dec.Decode(&r); err != nil {
			return yield(RunResult{}, fmt.Errorf("run results: %w", err))
		}
		if !yield(r, nil) {
			return false
		}
	}
	return true
}

func (s *resultFile) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.f.Close()
}

// spilledRuns are a job's run results in two files: the runs the plan
// skipped (listed first in the report) and the runs transferred.
type spilledRuns struct {
	plan, runs *resultFile
}

func newSpilledRuns() (*spilledRuns, error) {
	plan, err := newResultFile()
	if err != nil {
		return nil, err
	}
	runs, err := newResultFile()
	if err != nil {
		plan.close()
		return nil, err
	}
	return &spilledRuns{plan: plan, runs: runs}, nil
}

// Results yields the report's run results in the order Runs lists them:
// Runs itself, or, for a job run with Options.SpillRuns, the results read
// back from the job's temporary files (Runs is then empty). An error (the
// temporary file could not be written or read) is yielded last; the
// results are then incomplete.
func (r *Report) Results() iter.Seq2[RunResult, error] {
	return func(yield func(RunResult, error) bool) {
		for _, run := range r.Runs {
			if !yield(run, nil) {
				return
			}
		}
		if s := r.spill; s != nil {
			_ = s.plan.each(yield) && s.runs.each(yield)
		}
	}
}

// RunCount is the number of run results (Results); the same as len(Runs)
// for a job that kept them in memory.
func (r *Report) RunCount() int {
	n := len(r.Runs)
	if s := r.spill; s != nil {
		s.plan.mu.Lock()
		n += s.plan.n
		s.plan.mu.Unlock()
		s.runs.mu.Lock()
		n += s.runs.n
		s.runs.mu.Unlock()
	}
	return n
}

// Close releases the temporary files of a report whose run results were
// spilled (Options.SpillRuns); Results is then empty of them. It does
// nothing for other reports.
func (r *Report) Close() error {
	s := r.spill
	if s == nil {
		return nil
	}
	r.spill = nil
	return errors.Join(s.plan.close(), s.runs.close())
}

// reportJSON is Report without its methods, to encode it.
type reportJSON Report

// MarshalJSON encodes the report as encoding/json would encode its fields,
// with every run result (Results) in "runs". An error reading spilled
// results is returned.
func (r *Report) MarshalJSON() ([]byte, error) {
	if r.spill == nil {
		return json.Marshal((*reportJSON)(r))
	}
	var b bytes.Buffer
	if err := r.WriteJSON(&b, nil); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// WriteJSON writes the report as json.MarshalIndent(r, "", "  ") does,
// followed by a newline, each run result encoded as it is read (Results),
// so that the whole document is never in memory. scrub, when not nil, is
// applied to the text before it is written, a run result at a time and
// the rest of the document in two parts (what it replaces must lie within
// one JSON string, as a secret does).
func (r *Report) WriteJSON(w io.Writer, scrub func(string) string) error {
	if scrub == nil {
		scrub = func(s string) string { return s }
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	rest := *r
	rest.Runs, rest.spill = []RunResult{}, nil
	doc, err := json.MarshalIndent((*reportJSON)(&rest), "", "  ")
	if err != nil {
		return err
	}
	const marker = "\n  \"runs\": [],\n"
	i := bytes.Index(doc, []byte(marker))
	if i < 0 {
		return errors.New("report: no runs field")
	}
	head, tail := doc[:i+len("\n  \"runs\": ")], doc[i+len(marker)-2:]
	bw.WriteString(scrub(string(head)))
	switch {
	case r.RunCount() == 0 && r.Runs != nil:
		bw.WriteString("[]")
	case r.RunCount() == 0:
		bw.WriteString("null")
	default:
		n := 0
		for run, err := range r.Results() {
			if err != nil {
				return err
			}
			b, err := json.MarshalIndent(&run, "    ", "  ")
			if err != nil {
				return err
			}
			if n == 0 {
				bw.WriteString("[\n    ")
			} else {
				bw.WriteString(",\n    ")
			}
			bw.WriteString(scrub(string(b)))
			n++
		}
		bw.WriteString("\n  ]")
	}
	bw.WriteString(scrub(string(tail)))
	bw.WriteString("\n")
	return bw.Flush()
}
