package wandbcloud

import (
	"context"
	"crypto/md5"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"io"
	"iter"
	"slices"
	"strings"

	"github.com/runferry/runferry/internal/fault"
	"github.com/runferry/runferry/internal/wandbapi"
	"github.com/runferry/runferry/schema"
)

// Artifacts yields the run's files (run.files(): console log, media,
// config and summary files, user files), sorted by path; captured code
// (code/...) only with Config.Code. Each is downloaded when opened,
// streamed from its signed URL (directUrl; url with the key when there is
// none), its size and MD5 checked against the listing as it is read: a
// file that arrives otherwise is an error naming it. A refused (expired)
// URL is asked for again once. Among them are the artifact versions the
// run logged and used (see artifacts.go).
func (s *Source) Artifacts(ctx context.Context, run schema.Ref) iter.Seq2[schema.Artifact, error] {
	return func(yield func(schema.Artifact, error) bool) {
		p, err := s.split(run.ID, 2)
		if err != nil {
			yield(schema.Artifact{}, err)
			return
		}
		_, c, err := s.contents(ctx, run, true)
		if err != nil {
			yield(schema.Artifact{}, err)
			return
		}
		var files []wandbapi.RunFile
		for _, f := range c.Files {
			if strings.HasPrefix(f.Name, "code/") && !s.cfg.Code {
				continue
			}
			files = append(files, f)
		}
		carried, err := s.artifactFiles(ctx, run, p[0], c)
		if err != nil {
			yield(schema.Artifact{}, err)
			return
		}
		out := make([]schema.Artifact, 0, len(files)+len(carried))
		taken := map[string]bool{}
		for _, f := range files {
			taken[f.Name] = true
			out = append(out, schema.Artifact{Path: f.Name, Size: f.SizeBytes, Open: s.opener(run, p[0], p[1], f)})
		}
		for _, a := range carried {
			if !taken[a.Path] { // a run file already has the path: it wins
				out = append(out, a)
			}
		}
		slices.SortFunc(out, func(a, b schema.Artifact) int { return strings.Compare(a.Path, b.Path) })
		for _, a := range out {
			if !yield(a, nil) {
				return
			}
		}
	}
}

// opener opens one run file, checking its size and MD5 while it is read.
func (s *Source) opener(run schema.Ref, project, id string, f wandbapi.RunFile) func(context.Context) (io.ReadCloser, error) {
	return func(ctx context.Context) (io.ReadCloser, error) {
		ctx = wandbapi.About(ctx, fmt.Sprintf("run %s: file %s", run.ID, f.Name))
		rc, err := s.api.Open(ctx, cmpOr(f.DirectURL, f.URL))
		if errors.Is(err, wandbapi.ErrURLRefused) {
			// Expired: list the file again for a fresh URL.
			for g, lerr := range s.api.RunFiles(ctx, s.cfg.Entity, project, id) {
				if lerr != nil {
					return nil, lerr
				}
				if g.Name == f.Name {
					rc, err = s.api.Open(ctx, cmpOr(g.DirectURL, g.URL))
					break
				}
			}
		}
		if err != nil {
			return nil, fmt.Errorf("wandb: run %s: file %s: %w", run.ID, f.Name, err)
		}
		return &checkedBody{rc: rc, h: md5.New(), want: f.SizeBytes, md5: f.MD5, name: run.ID + ": file " + f.Name}, nil
	}
}

// checkedBody checks a download's size and MD5 at its end.
type checkedBody struct {
	rc   io.ReadCloser
	h    hash.Hash
	n    int64
	want int64
	md5  string
	name string
}

func (b *checkedBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.h.Write(p[:n])
	b.n += int64(n)
	if b.n > b.want {
		return n, fault.Retryable(fmt.Errorf("wandb: run %s: more than the %d bytes listed", b.name, b.want), 0)
	}
	if err == io.EOF {
		if b.n != b.want {
			return n, fault.Retryable(fmt.Errorf("wandb: run %s: %d bytes arrived, %d listed", b.name, b.n, b.want), 0)
		}
		if got := base64.StdEncoding.EncodeToString(b.h.Sum(nil)); b.md5 != "" && got != b.md5 {
			return n, fault.Retryable(fmt.Errorf("wandb: run %s: MD5 %s, listed %s", b.name, got, b.md5), 0)
		}
	}
	return n, err
}

func (b *checkedBody) Close() error { return b.rc.Close() }
