package wandbtest

import (
	"bytes"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/parquet-go/parquet-go"
)

// Parquet history exports.
//
// A run whose Export is set has its first len(History)-Export.Live rows
// exported, split in Export.Files parquet files of about equal row counts;
// the rows after them are the live tail. parquetHistory(liveKeys) answers
// parquetUrls (signed URLs on this server, /exports/..., fetched without
// credentials) and liveData (the live rows projected on liveKeys, as JSON
// objects). A run without Export answers no URLs and no live data, so
// readers fall back to the paged scan.
//
// The files' schema (W&B's own is UNVERIFIED): `_step` a required INT64;
// every other key an optional column, DOUBLE when all its values are
// numbers (booleans as 0/1, as the fixtures load them), BOOLEAN when all
// are booleans, STRING when all are strings, else a STRING annotated JSON
// holding the value's JSON (dicts, lists, mixed kinds); a row without the
// key holds null. Rows are in step order.

// Export says how much of a run's history the server has exported.
type Export struct {
	Files int // number of parquet files (at least 1)
	Live  int // number of last rows not exported (the live tail)
}

// ExportFixtures gives some runs of the W&B fixtures (Load) parquet
// history exports: fxa00001 (sparse steps, media) in three files, fxb00002
// in one, fxd00004 in one file and a live tail of two rows, fxc00003 only a
// live tail; the others none (the paged scan).
func ExportFixtures(d *Data) {
	ex := map[string]Export{"fxa00001": {Files: 3}, "fxb00002": {Files: 1},
		"fxd00004": {Files: 1, Live: 2}, "fxc00003": {Live: 5}}
	for _, p := range d.Projects {
		for _, r := range p.Runs {
			if e, ok := ex[r.ID]; ok {
				r.Export = &e
			}
		}
	}
}

// span is the history rows [lo, hi) of a run, by index.
type span struct{ lo, hi int }

// exportSplit returns the exported rows of r split into its files, and the
// live rows.
func exportSplit(r *Run) (files []span, live span) {
	if r.Export == nil {
		return nil, span{}
	}
	total := r.historyLen()
	n := max(total-r.Export.Live, 0)
	k := max(r.Export.Files, 1)
	for i := range k {
		lo, hi := i*n/k, (i+1)*n/k
		if hi > lo {
			files = append(files, span{lo, hi})
		}
	}
	return files, span{n, total}
}

// parquetHistory answers run.parquetHistory(liveKeys).
func (s *Server) parquetHistory(p *Project, r *Run, a map[string]any) (any, error) {
	var keys []string
	l, ok := a["liveKeys"].([]any)
	if !ok {
		return nil, fmt.Errorf("parquetHistory: liveKeys must be a list of strings")
	}
	for _, k := range l {
		ks, ok := k.(string)
		if !ok {
			return nil, fmt.Errorf("parquetHistory: liveKeys must be a list of strings")
		}
		keys = append(keys, ks)
	}
	files, live := exportSplit(r)
	urls := []string{}
	for i := range files {
		urls = append(urls, s.signedURL(fmt.Sprintf("/exports/%s/%s/%s/%d.parquet", s.data.Entity, p.Name, r.ID, i)))
	}
	liveData := []any{}
	for i := live.lo; i < live.hi; i++ {
		row := r.rowAt(i)
		m := map[string]any{}
		for _, k := range keys {
			if v, ok := row[k]; ok {
				m[k] = v
			}
		}
		liveData = append(liveData, m)
	}
	s.ParquetQueries.Add(1)
	return &object{typ: "ParquetHistory", fields: map[string]func(map[string]any) (any, error){
		"parquetUrls": field(urls),
		"liveData":    field(liveData),
	}}, nil
}

// signedURL is path on this server with an expiry and a signature.
func (s *Server) signedURL(path string) string {
	s.mu.Lock()
	ttl := s.urlTTL
	s.mu.Unlock()
	exp := int64(0)
	if ttl != 0 {
		exp = time.Now().Add(ttl).UnixNano()
	}
	return fmt.Sprintf("%s%s?expires=%d&sig=%s", s.URL, path, exp, s.sign(path, exp))
}

func (s *Server) sign(path string, exp int64) string {
	return strconv.FormatUint(fnv64(s.key+"\x00"+path+"\x00"+strconv.FormatInt(exp, 10)), 16)
}

func fnv64(x string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(x); i++ {
		h ^= uint64(x[i])
		h *= 1099511628211
	}
	return h
}

// SetURLTTL makes signed URLs expire ttl after they are handed out (0:
// never; a negative ttl: already expired);
// an expired one is answered 403 with S3's AccessDenied body.
func (s *Server) SetURLTTL(ttl time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.urlTTL = ttl
}

// serveSigned answers GET of a signed URL: it must carry a valid, unexpired
// signature and no credentials are needed (none are checked).
func (s *Server) serveSigned(w http.ResponseWriter, r *http.Request) {
	exp, err := strconv.ParseInt(r.URL.Query().Get("expires"), 10, 64)
	if err != nil || r.URL.Query().Get("sig") != s.sign(r.URL.Path, exp) {
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, `<Error><Code>SignatureDoesNotMatch</Code></Error>`)
		return
	}
	if exp != 0 && time.Now().UnixNano() > exp {
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, `<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>`)
		return
	}
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/exports/"), "/")
	if len(parts) != 4 || parts[0] != s.data.Entity {
		http.NotFound(w, r)
		return
	}
	for _, p := range s.data.Projects {
		if p.Name != parts[1] {
			continue
		}
		for _, run := range s.live(p) {
			if run.ID != parts[2] {
				continue
			}
			files, _ := exportSplit(run)
			i, err := strconv.Atoi(strings.TrimSuffix(parts[3], ".parquet"))
			if err != nil || i < 0 || i >= len(files) {
				break
			}
			if g := run.Generated; g != nil {
				// made as it is sent: its size is not known before
				s.ExportDownloads.Add(1)
				w.Header().Set("Content-Type", "application/octet-stream")
				writeGenerated(w, g, files[i].lo, files[i].hi) // an error is the client's broken connection
				return
			}
			b, err := s.exportFile(p, run, i, run.History[files[i].lo:files[i].hi])
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			s.ExportDownloads.Add(1)
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Header().Set("Content-Length", strconv.Itoa(len(b)))
			w.Write(b)
			return
		}
	}
	http.NotFound(w, r)
}

// column kinds of an export file.
const (
	colDouble = iota
	colBool
	colString
	colJSON
)

// parquetFile encodes rows as an export file (see the schema above).
func parquetFile(rows []map[string]any) ([]byte, error) {
	kinds := map[string]int{}
	for _, row := range rows {
		for k, v := range row {
			if k == "_step" {
				continue
			}
			var kind int
			switch v.(type) {
			case float64, int64, int:
				kind = colDouble
			case bool:
				kind = colBool
			case string:
				kind = colString
			default:
				kind = colJSON
			}
			if old, ok := kinds[k]; ok && old != kind {
				kind = colJSON
			}
			kinds[k] = kind
		}
	}
	group := parquet.Group{"_step": parquet.Leaf(parquet.Int64Type)}
	for k, kind := range kinds {
		switch kind {
		case colDouble:
			group[k] = parquet.Optional(parquet.Leaf(parquet.DoubleType))
		case colBool:
			group[k] = parquet.Optional(parquet.Leaf(parquet.BooleanType))
		case colString:
			group[k] = parquet.Optional(parquet.String())
		default:
			group[k] = parquet.Optional(parquet.JSON())
		}
	}
	schema := parquet.NewSchema("history", group)
	var buf bytes.Buffer
	w := parquet.NewWriter(&buf, schema)
	cols := schema.Columns()
	for _, row := range rows {
		pr := make(parquet.Row, 0, len(cols))
		for i, path := range cols {
			name := path[0]
			v, ok := row[name]
			if name == "_step" {
				pr = append(pr, parquet.Int64Value(stepOf(row)).Level(0, 0, i))
				continue
			}
			if !ok || v == nil {
				pr = append(pr, parquet.NullValue().Level(0, 0, i))
				continue
			}
			var pv parquet.Value
			switch kinds[name] {
			case colDouble:
				pv = parquet.DoubleValue(toFloat(v))
			case colBool:
				pv = parquet.BooleanValue(v.(bool))
			case colString:
				pv = parquet.ByteArrayValue([]byte(v.(string)))
			default:
				b, err := marshal(v)
				if err != nil {
					return nil, err
				}
				pv = parquet.ByteArrayValue(b)
			}
			pr = append(pr, pv.Level(0, 1, i))
		}
		if _, err := w.WriteRows([]parquet.Row{pr}); err != nil {
			return nil, err
		}
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func toFloat(v any) float64 {
	switch x := v.(type) {
	case float64:
		return x
	case int64:
		return float64(x)
	case int:
		return float64(x)
	}
	return math.NaN()
}

// exportFile returns the bytes of a run's export file i, built once and
// kept (the data does not change once served).
func (s *Server) exportFile(p *Project, r *Run, i int, rows []map[string]any) ([]byte, error) {
	k := p.Name + "/" + r.ID + "/" + strconv.Itoa(i)
	s.mu.Lock()
	b, ok := s.exports[k]
	s.mu.Unlock()
	if ok {
		return b, nil
	}
	b, err := parquetFile(rows)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.exports == nil {
		s.exports = map[string][]byte{}
	}
	s.exports[k] = b
	return b, nil
}

// WarmExports builds every export file of the runs whose History is held
// now, so that serving them costs no time later (benchmarks measure the
// clients, not the server). Generated runs' exports are made as they are
// sent.
func (s *Server) WarmExports() error {
	for _, p := range s.data.Projects {
		for _, r := range p.Runs {
			if r.Generated != nil {
				continue
			}
			files, _ := exportSplit(r)
			for i, f := range files {
				if _, err := s.exportFile(p, r, i, r.History[f.lo:f.hi]); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
