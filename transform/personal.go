package transform

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/runferry/runferry/internal/fault"
	"github.com/runferry/runferry/schema"
)

// DropPersonal leaves personal data out of runs: who ran a run and where
// on their machine. That is the host name (Run.Host), the e-mail address
// (tag wandb.email), the local paths of the Python executable and of the
// run's root folder (tags wandb.executable, wandb.root), the command line
// (tag wandb.args), and the same fields (PersonalMetadataFields) of W&B's
// run file wandb-metadata.json, which is written without them. W&B's
// other environment fields (wandb.os, python, GPU, CPU count) describe the
// platform, not a person, and stay.
//
// The CLI applies it on the way into a destination whose contents every
// user of it sees (sinks.SharedView: an MLflow tracking server) unless
// --keep-personal asks for the data; an archive keeps what the source had.
// Recorded with the run like every step, so that `check` expects the data
// absent. The zero value is the current step; Parse also gives back the
// step recorded by versions before 11 ("drop-personal=host,email", which
// left out the host name and e-mail tag only).
type DropPersonal struct {
	hostEmailOnly bool // the step as recorded before version 11
}

// PersonalTags are the tag keys DropPersonal leaves out, with what each
// holds.
var PersonalTags = map[string]string{
	"wandb.email":      "e-mail address",
	"wandb.executable": "local path",
	"wandb.root":       "local path",
	"wandb.args":       "command line",
}

// PersonalMetadataFields are the top-level fields of wandb-metadata.json
// DropPersonal leaves out of the file.
var PersonalMetadataFields = []string{"host", "email", "executable", "root", "args"}

// MetadataFile is the path of W&B's environment file among a W&B run's
// files.
const MetadataFile = "wandb-metadata.json"

// maxMetadataFile bounds the wandb-metadata.json DropPersonal reads whole.
const maxMetadataFile = 16 << 20

const (
	dropPersonalValue       = "host,email,executable,root,args"
	dropPersonalFormerValue = "host,email"
)

// Experiment changes nothing.
func (DropPersonal) Experiment(e schema.Experiment) schema.Experiment { return e }

// Metrics changes nothing.
func (DropPersonal) Metrics(page []schema.Metric) []schema.Metric { return page }

// Run clears r.Host and removes the personal tags, naming each.
func (d DropPersonal) Run(r schema.Run) (schema.Run, []string) {
	var left []string
	if r.Host != "" {
		r.Host = ""
		left = append(left, "host name")
	}
	personal := func(t schema.Tag) bool {
		_, ok := PersonalTags[t.Key]
		return ok && (!d.hostEmailOnly || t.Key == "wandb.email")
	}
	if slices.ContainsFunc(r.Tags, personal) {
		r.Tags = slices.DeleteFunc(slices.Clone(r.Tags), func(t schema.Tag) bool {
			if personal(t) {
				left = append(left, PersonalTags[t.Key]+" (tag "+t.Key+")")
				return true
			}
			return false
		})
	}
	return r, left
}

// Artifact gives W&B's wandb-metadata.json (MetadataFile) back without its
// personal fields, naming each field left out; every other file, and a
// metadata file without personal fields, is returned as it is (byte for
// byte, so applying the step twice changes nothing more). The file is read
// whole, through a.Open; the result holds the new content, its size and
// digest. A metadata file that is not a JSON object (or larger than 16 MiB)
// is a permanent error naming it: its personal fields cannot be found.
func (d DropPersonal) Artifact(ctx context.Context, a schema.Artifact) (schema.Artifact, []string, error) {
	if d.hostEmailOnly || a.Path != MetadataFile || a.Open == nil || a.Problem != "" {
		return a, nil, nil
	}
	rc, err := a.Open(ctx)
	if err != nil {
		return a, nil, err
	}
	raw, err := io.ReadAll(io.LimitReader(rc, maxMetadataFile+1))
	rc.Close()
	if err != nil {
		return a, nil, err
	}
	if len(raw) > maxMetadataFile {
		return a, nil, fault.Permanent(fmt.Errorf("%s: larger than %d bytes; its personal fields cannot be left out", a.Path, maxMetadataFile))
	}
	out, left, err := dropFields(raw, PersonalMetadataFields)
	if err != nil {
		return a, nil, fault.Permanent(fmt.Errorf("%s: %w; its personal fields cannot be left out", a.Path, err))
	}
	for i, f := range left {
		left[i] = "field " + f + " of " + MetadataFile
	}
	sum := sha256.Sum256(out)
	a.Size, a.Digest = int64(len(out)), "sha256:"+hex.EncodeToString(sum[:])
	a.Open = func(context.Context) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(out)), nil }
	return a, left, nil
}

// dropFields returns the JSON object raw without the top-level fields
// named, the others in their order (indented by four spaces, as W&B writes
// the file), and the names it removed; raw itself when it has none of them.
func dropFields(raw []byte, fields []string) ([]byte, []string, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, nil, errors.New("not a JSON object")
	}
	type member struct {
		key string
		val json.RawMessage
	}
	var kept []member
	var left []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, fmt.Errorf("not a JSON object: %w", err)
		}
		key, _ := tok.(string)
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil {
			return nil, nil, fmt.Errorf("not a JSON object: field %q: %w", key, err)
		}
		if slices.Contains(fields, key) {
			left = append(left, key)
			continue
		}
		kept = append(kept, member{key, val})
	}
	if _, err := dec.Token(); err != nil {
		return nil, nil, fmt.Errorf("not a JSON object: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, nil, errors.New("not a JSON object: data after the object")
	}
	if len(left) == 0 {
		return raw, nil, nil
	}
	var b bytes.Buffer
	b.WriteString("{")
	for i, m := range kept {
		if i > 0 {
			b.WriteString(",")
		}
		k, _ := json.Marshal(m.key)
		b.WriteString("\n    ")
		b.Write(k)
		b.WriteString(": ")
		if err := json.Indent(&b, m.val, "    ", "    "); err != nil {
			return nil, nil, err
		}
	}
	if len(kept) > 0 {
		b.WriteString("\n")
	}
	b.WriteString("}\n")
	return b.Bytes(), left, nil
}

func (d DropPersonal) String() string {
	if d.hostEmailOnly {
		return "drop-personal=" + dropPersonalFormerValue
	}
	return "drop-personal=" + dropPersonalValue
}
