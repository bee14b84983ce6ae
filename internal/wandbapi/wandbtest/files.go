package wandbtest

import (
	"crypto/md5"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Run files.
//
// A run's Files answer run { fileCount files(names, after, first, pattern)
// } as W&B's SDK asks (run.files(): id name url(upload) directUrl
// sizeBytes mimetype updatedAt md5, md5 in base64 as W&B gives it). url is
// this server's /files/ENTITY/PROJECT/RUN/NAME, fetched with the API key;
// directUrl a signed storage URL (/storage/...) fetched without. names and
// pattern (MySQL LIKE: % and _) select files; both at once is an error, as
// the SDK says; url(upload: true) is an error (the server takes no
// uploads).

// File is a run file.
type File struct {
	Name      string // slash-separated path in the run's files
	Content   []byte
	Mimetype  string
	UpdatedAt time.Time
}

// md5 is the file's MD5 in base64, as W&B's files answer it.
func (f *File) md5() string {
	sum := md5.Sum(f.Content)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// files answers run.files(...).
func (s *Server) files(p *Project, r *Run, a map[string]any) (any, error) {
	var names []string
	if l, ok := a["names"].([]any); ok {
		for _, n := range l {
			if ns, ok := n.(string); ok {
				names = append(names, ns)
			}
		}
	}
	pattern, _ := a["pattern"].(string)
	if len(names) > 0 && pattern != "" {
		return nil, fmt.Errorf("files: names and pattern cannot be combined")
	}
	var re *regexp.Regexp
	if pattern != "" {
		var b strings.Builder
		for _, c := range pattern {
			switch c {
			case '%':
				b.WriteString(".*")
			case '_':
				b.WriteString(".")
			default:
				b.WriteString(regexp.QuoteMeta(string(c)))
			}
		}
		re = regexp.MustCompile("^" + b.String() + "$")
	}
	var sel []*File
	for i := range r.Files {
		f := &r.Files[i]
		if len(names) > 0 && !contains(names, f.Name) || re != nil && !re.MatchString(f.Name) {
			continue
		}
		sel = append(sel, f)
	}
	return pageOf("FileConnection", sel, a, func(f *File) *object {
		path := "/" + url.PathEscape(s.data.Entity) + "/" + url.PathEscape(p.Name) + "/" + url.PathEscape(r.ID) + "/" + escapePath(f.Name)
		return &object{typ: "File", fields: map[string]func(map[string]any) (any, error){
			"id":   field(base64.StdEncoding.EncodeToString([]byte("File:" + r.ID + ":" + f.Name))),
			"name": field(f.Name),
			"url": func(a map[string]any) (any, error) {
				if up, _ := a["upload"].(bool); up {
					return nil, fmt.Errorf("url(upload: true): the test server takes no uploads")
				}
				return s.URL + "/files" + path, nil
			},
			"directUrl": func(map[string]any) (any, error) { return s.signedURL("/storage" + path), nil },
			"sizeBytes": field(len(f.Content)),
			"mimetype":  field(f.Mimetype),
			"updatedAt": field(timeString(f.UpdatedAt)),
			"md5":       field(f.md5()),
		}}
	})
}

func contains(l []string, x string) bool {
	for _, e := range l {
		if e == x {
			return true
		}
	}
	return false
}

func escapePath(p string) string {
	parts := strings.Split(p, "/")
	for i, x := range parts {
		parts[i] = url.PathEscape(x)
	}
	return strings.Join(parts, "/")
}

// serveFile answers GET /files/... (with the API key) and /storage/...
// (signed) with a run file's content.
func (s *Server) serveFile(w http.ResponseWriter, r *http.Request, signed bool) {
	prefix := "/files/"
	if signed {
		prefix = "/storage/"
		exp, err := strconv.ParseInt(r.URL.Query().Get("expires"), 10, 64)
		if err != nil || r.URL.Query().Get("sig") != s.sign(r.URL.EscapedPath(), exp) && r.URL.Query().Get("sig") != s.sign(r.URL.Path, exp) {
			http.Error(w, "SignatureDoesNotMatch", http.StatusForbidden)
			return
		}
		if exp != 0 && time.Now().UnixNano() > exp {
			http.Error(w, "Request has expired", http.StatusForbidden)
			return
		}
	} else if user, pass, ok := r.BasicAuth(); !ok || user != "api" || pass != s.key {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	parts := strings.SplitN(strings.TrimPrefix(r.URL.Path, prefix), "/", 4)
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
			for i := range run.Files {
				if f := &run.Files[i]; f.Name == parts[3] {
					s.FileDownloads.Add(1)
					w.Header().Set("Content-Type", f.Mimetype)
					w.Header().Set("Content-Length", strconv.Itoa(len(f.Content)))
					w.Write(f.Content)
					return
				}
			}
		}
	}
	http.NotFound(w, r)
}
