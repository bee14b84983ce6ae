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
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/runferry/runferry/internal/fault"
	"github.com/runferry/runferry/schema"
)

// DropPersonal leaves personal data out of runs: where on their machine a
// run ran and who was logged in there. That is the host name (Run.Host),
// the e-mail address (tag wandb.email), the local paths of the Python
// executable and of the run's root folder (tags wandb.executable,
// wandb.root), the command line (tag wandb.args), the machine's login name
// (tag wandb.username: the OS account W&B wrote into wandb-metadata.json,
// not the W&B account), and the same fields (PersonalMetadataFields) of
// W&B's run file wandb-metadata.json, which is written without them. Home
// folders (/Users/NAME, /home/NAME, C:\Users\NAME: HomeFolders) become "~"
// wherever runferry itself wrote them down: the program (Run.Program),
// every tag value, the damage notes, the problem of a file the source
// could not read, and every string of wandb-metadata.json. What the user
// logged (config, params, summary, notes, metrics, other files) arrives
// whole. W&B's other environment fields (wandb.os, python, GPU, CPU count)
// describe the platform, not a person, and stay.
//
// The run's user (Run.User: the user the source system recorded and
// showed, MLflow's mlflow.user, the user of W&B's run record or of the W&B
// cloud's run) is attribution, not machine detail: it is kept, and shown
// by MLflow as "Created by", unless User is set (the CLI's --drop-user),
// which clears it too, naming it.
//
// The CLI applies it on the way into a destination whose contents every
// user of it sees (sinks.SharedView: an MLflow tracking server) unless
// --keep-personal asks for the data; an archive keeps what the source had.
// Recorded with the run like every step, so that `check` expects the data
// absent: "drop-personal=host,email,executable,root,args,login,home" (the
// default) or, with User,
// "drop-personal=host,email,executable,root,args,username,home" (the
// former default, which dropped the run's user: recorded by earlier
// versions, it reads as the step with User). Parse also gives back the
// steps recorded by earlier versions still, as what they did:
// "drop-personal=host,email,executable,root,args" (no user name, no home
// folders) and "drop-personal=host,email" (the host name and e-mail tag
// only). A run copied with the former default and holding no user is
// written the same by the default (SameFingerprint): a sync does not write
// it again; a run holding a user is written again, and gains its user.
type DropPersonal struct {
	// User also clears the run's user (Run.User).
	User   bool
	former int // 0: the current step; formerPaths, formerHostEmail: as recorded before
}

// The steps earlier versions recorded (DropPersonal.former).
const (
	formerPaths     = 1 // drop-personal=host,email,executable,root,args
	formerHostEmail = 2 // drop-personal=host,email
)

// PersonalTags are the tag keys DropPersonal leaves out, with what each
// holds.
var PersonalTags = map[string]string{
	"wandb.email":      "e-mail address",
	"wandb.executable": "local path",
	"wandb.root":       "local path",
	"wandb.args":       "command line",
	TagLogin:           "login name",
}

// TagLogin is the tag holding the name of the machine's account a W&B run
// ran under, as W&B wrote it into wandb-metadata.json ("username"), when
// the run's own records name no user (see sources/wandbdir).
const TagLogin = "wandb.username"

// PersonalMetadataFields are the top-level fields of wandb-metadata.json
// DropPersonal leaves out of the file.
var PersonalMetadataFields = []string{"host", "email", "executable", "root", "args", "username"}

// MetadataFile is the path of W&B's environment file among a W&B run's
// files.
const MetadataFile = "wandb-metadata.json"

// maxMetadataFile bounds the wandb-metadata.json DropPersonal reads whole.
const maxMetadataFile = 16 << 20

const (
	dropPersonalValue          = "host,email,executable,root,args,login,home"
	dropPersonalUserValue      = "host,email,executable,root,args,username,home"
	dropPersonalFormerPaths    = "host,email,executable,root,args"
	dropPersonalFormerHostMail = "host,email"
)

// homeFolder matches a home folder at the start of a path: /Users/NAME
// (macOS), /home/NAME (Linux), X:\Users\NAME or X:/Users/NAME (Windows,
// where NAME may hold spaces), where the path begins the text or follows a
// character that cannot be part of a path (a space, a quote, "=", ":", a
// bracket).
var homeFolder = regexp.MustCompile(`(^|[\s"'=:,;(\[{<>|])(?:/(?:Users|home)/[^/\\\s"'<>|:;,)\]}]+|[A-Za-z]:[\\/](?:Users|Documents and Settings)[\\/][^/\\"'<>|:;,)\]}]+)`)

// HomeFolders returns s with each home folder (/Users/NAME, /home/NAME,
// C:\Users\NAME) written as "~", and whether it changed anything:
// /Users/alice/proj/train.py -> ~/proj/train.py.
func HomeFolders(s string) (string, bool) {
	if !strings.Contains(s, "Users") && !strings.Contains(s, "/home/") && !strings.Contains(s, "Documents and Settings") {
		return s, false
	}
	out := homeFolder.ReplaceAllString(s, "${1}~")
	return out, out != s
}

// Experiment changes nothing.
func (DropPersonal) Experiment(e schema.Experiment) schema.Experiment { return e }

// Metrics changes nothing.
func (DropPersonal) Metrics(page []schema.Metric) []schema.Metric { return page }

// Run clears r.Host (and r.User when d.User), removes the personal tags and
// writes the home folders of r.Program, of tag values and of r.Damage as
// "~", naming each item.
func (d DropPersonal) Run(r schema.Run) (schema.Run, []string) {
	var left []string
	if r.Host != "" {
		r.Host = ""
		left = append(left, "host name")
	}
	personal := func(t schema.Tag) bool {
		_, ok := PersonalTags[t.Key]
		if t.Key == TagLogin { // older versions' sources put it in Run.User
			return ok && d.former == 0
		}
		return ok && (d.former != formerHostEmail || t.Key == "wandb.email")
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
	if d.former != 0 {
		return r, left
	}
	if d.User && r.User != "" {
		r.User = ""
		left = append(left, "user name")
	}
	if p, ok := HomeFolders(r.Program); ok {
		r.Program = p
		left = append(left, "home folder (program)")
	}
	cloned := false
	for i, t := range r.Tags {
		if v, ok := HomeFolders(t.Value); ok {
			if !cloned {
				r.Tags, cloned = slices.Clone(r.Tags), true
			}
			r.Tags[i].Value = v
			left = append(left, "home folder (tag "+t.Key+")")
		}
	}
	if len(r.InheritedDamage) > 0 { // rewritten as Damage is, to stay its entries
		inh := slices.Clone(r.InheritedDamage)
		for i, dmg := range inh {
			if v, ok := HomeFolders(dmg); ok {
				inh[i] = v
			}
		}
		r.InheritedDamage = inh
	}
	cloned = false
	for i, dmg := range r.Damage {
		if v, ok := HomeFolders(dmg); ok {
			if !cloned {
				r.Damage, cloned = slices.Clone(r.Damage), true
			}
			r.Damage[i] = v
			left = append(left, "home folder (damage note)")
		}
	}
	return r, left
}

// Artifact writes the home folders of a file's problem (a file the source
// could not read) as "~", and gives W&B's wandb-metadata.json
// (MetadataFile) back without its personal fields and with the home
// folders of its strings as "~", naming each item left out. Every other
// file, and a metadata file without personal data, is returned as it is
// (byte for byte, so applying the step twice changes nothing more). The
// file is read whole, through a.Open; the result holds the new content,
// its size and digest. A metadata file that is not a JSON object (or
// larger than 16 MiB) is a permanent error naming it: its personal fields
// cannot be found.
func (d DropPersonal) Artifact(ctx context.Context, a schema.Artifact) (schema.Artifact, []string, error) {
	if d.former == formerHostEmail {
		return a, nil, nil
	}
	var left []string
	if d.former == 0 {
		if p, ok := HomeFolders(a.Problem); ok {
			a.Problem = p
			left = append(left, "home folder (problem of file "+a.Path+")")
		}
	}
	if a.Path != MetadataFile || a.Open == nil || a.Problem != "" {
		return a, left, nil
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
	fields, home := PersonalMetadataFields, HomeFolders
	if d.former == formerPaths {
		fields, home = PersonalMetadataFields[:5], nil
	}
	out, dropped, err := dropFields(raw, fields, home)
	if err != nil {
		return a, nil, fault.Permanent(fmt.Errorf("%s: %w; its personal fields cannot be left out", a.Path, err))
	}
	for _, f := range dropped {
		if f, ok := strings.CutSuffix(f, " (home folder)"); ok {
			left = append(left, "home folder (field "+f+" of "+MetadataFile+")")
			continue
		}
		left = append(left, "field "+f+" of "+MetadataFile)
	}
	if len(dropped) == 0 {
		return a, left, nil
	}
	sum := sha256.Sum256(out)
	a.Size, a.Digest = int64(len(out)), "sha256:"+hex.EncodeToString(sum[:])
	a.Open = func(context.Context) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(out)), nil }
	return a, left, nil
}

// dropFields returns the JSON object raw without the top-level fields
// named, the others in their order (indented by four spaces, as W&B writes
// the file) with home applied to each of their strings (keys and values,
// at any depth; nil: none), and what it changed: the names it removed, and
// "NAME (home folder)" for each field whose strings home changed. It
// returns raw itself when it changed nothing.
func dropFields(raw []byte, fields []string, home func(string) (string, bool)) ([]byte, []string, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, nil, errors.New("not a JSON object")
	}
	type member struct {
		key string
		val []byte
	}
	var kept []member
	var left []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, fmt.Errorf("not a JSON object: %w", err)
		}
		key, _ := tok.(string)
		var val bytes.Buffer
		changed, err := copyValue(dec, &val, home)
		if err != nil {
			return nil, nil, fmt.Errorf("not a JSON object: field %q: %w", key, err)
		}
		if slices.Contains(fields, key) {
			left = append(left, key)
			continue
		}
		if changed {
			left = append(left, key+" (home folder)")
		}
		kept = append(kept, member{key, val.Bytes()})
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
		b.WriteString("\n    ")
		writeString(&b, m.key)
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

// copyValue copies the next JSON value of dec to b, compact, with home
// applied to its strings (keys included; nil: none), in their order, and
// reports whether home changed one.
func copyValue(dec *json.Decoder, b *bytes.Buffer, home func(string) (string, bool)) (bool, error) {
	tok, err := dec.Token()
	if err != nil {
		return false, err
	}
	str := func(s string) bool {
		changed := false
		if home != nil {
			s, changed = home(s)
		}
		writeString(b, s)
		return changed
	}
	switch t := tok.(type) {
	case json.Delim:
		changed := false
		open, end := byte(t), byte(']')
		if t == '{' {
			end = '}'
		}
		b.WriteByte(open)
		for first := true; dec.More(); first = false {
			if !first {
				b.WriteByte(',')
			}
			if t == '{' {
				k, err := dec.Token()
				if err != nil {
					return false, err
				}
				ks, _ := k.(string)
				changed = str(ks) || changed
				b.WriteByte(':')
			}
			c, err := copyValue(dec, b, home)
			if err != nil {
				return false, err
			}
			changed = changed || c
		}
		if _, err := dec.Token(); err != nil {
			return false, err
		}
		b.WriteByte(end)
		return changed, nil
	case string:
		return str(t), nil
	case json.Number:
		b.WriteString(t.String())
	case bool:
		b.WriteString(strconv.FormatBool(t))
	case nil:
		b.WriteString("null")
	}
	return false, nil
}

// writeString writes s as a JSON string, without escaping HTML characters.
func writeString(b *bytes.Buffer, s string) {
	var e bytes.Buffer
	enc := json.NewEncoder(&e)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	b.Write(bytes.TrimSuffix(e.Bytes(), []byte("\n")))
}

func (d DropPersonal) String() string {
	switch d.former {
	case formerPaths:
		return "drop-personal=" + dropPersonalFormerPaths
	case formerHostEmail:
		return "drop-personal=" + dropPersonalFormerHostMail
	}
	if d.User {
		return "drop-personal=" + dropPersonalUserValue
	}
	return "drop-personal=" + dropPersonalValue
}
