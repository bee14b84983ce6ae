package wandbdir

import (
	"strings"

	"github.com/runferry/runferry/schema"
)

// maxLineBytes caps a console line still waiting for its newline; beyond it
// the text is emitted as a line of its own so that a stream without
// newlines cannot grow without bound.
const maxLineBytes = 1 << 20

// lineSplitter turns console chunks into lines. W&B's output_raw records
// hold raw terminal chunks: a line may span several records, a record may
// hold several lines, and a multi-byte UTF-8 character may be split across
// two records, so chunks are joined before splitting and text is made valid
// UTF-8 only once a line is complete.
//
// Carriage returns are treated as a terminal shows them: a line keeps only
// the text after its last "\r" (a progress bar redrawn in place yields its
// final state), and "\r\n" ends a line like "\n".
type lineSplitter struct {
	stream  string
	pending strings.Builder
	start   int64 // time of the chunk that began the pending line
	out     func(schema.LogLine)
}

// write adds a chunk written at time t (Unix ms).
func (s *lineSplitter) write(chunk string, t int64) {
	for chunk != "" {
		if s.pending.Len() == 0 {
			s.start = t
		}
		i := strings.IndexByte(chunk, '\n')
		if i < 0 {
			s.pending.WriteString(chunk)
			s.compact()
			return
		}
		s.pending.WriteString(chunk[:i])
		s.emit()
		chunk = chunk[i+1:]
	}
}

// compact drops the text of a pending line that a later "\r" overwrote,
// keeping a trailing "\r" that may be the first half of "\r\n".
func (s *lineSplitter) compact() {
	p := s.pending.String()
	if j := strings.LastIndexByte(p[:max(len(p)-1, 0)], '\r'); j >= 0 {
		s.pending.Reset()
		s.pending.WriteString(p[j+1:])
	}
	if s.pending.Len() > maxLineBytes {
		s.emit()
	}
}

// emit sends the pending text as one line.
func (s *lineSplitter) emit() {
	line := strings.TrimSuffix(s.pending.String(), "\r")
	if j := strings.LastIndexByte(line, '\r'); j >= 0 {
		line = line[j+1:]
	}
	s.pending.Reset()
	s.out(schema.LogLine{Time: s.start, Stream: s.stream, Line: strings.ToValidUTF8(line, "\uFFFD")})
}

// flush emits a pending partial line (at the end of a segment: the process
// that wrote it is gone).
func (s *lineSplitter) flush() {
	if s.pending.Len() > 0 {
		s.emit()
	}
}
