package transform

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/runferry/runferry/internal/fault"
	"github.com/runferry/runferry/schema"
)

func TestChain(t *testing.T) {
	c := Chain{PrefixExperiments("wandb-"), DropMetrics{"system/*", "_*"}}
	if got := c.Experiment(schema.Experiment{Name: "vision"}).Name; got != "wandb-vision" {
		t.Errorf("prefix: %q", got)
	}
	page := []schema.Metric{{Key: "loss"}, {Key: "system/cpu"}, {Key: "_runtime"}, {Key: "system/gpu/0"}, {Key: "val/acc"}}
	got := c.Metrics(page)
	want := []schema.Metric{{Key: "loss"}, {Key: "system/gpu/0"}, {Key: "val/acc"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("drop: %+v", got)
	}
	if s := c.String(); s != "prefix-experiments=wandb-|drop-metrics=system/*,_*" {
		t.Errorf("String = %q", s)
	}
}

func TestParseAndFingerprint(t *testing.T) {
	c := Chain{PrefixExperiments("wb/"), DropMetrics{"system/*", "gpu.*"}}
	back, err := Parse(c.String())
	if err != nil || back.String() != c.String() {
		t.Fatalf("Parse(%q) = %v, %v", c.String(), back, err)
	}
	if _, err := Parse("rename=x"); err == nil {
		t.Error("an unknown step parsed")
	}
	if c, err := Parse(""); err != nil || c != nil {
		t.Errorf("Parse(\"\") = %v, %v", c, err)
	}
	fp := c.Fingerprint("abc")
	if fp != "abc +prefix-experiments=wb/|drop-metrics=system/*,gpu.*" || Recorded(fp) != c.String() {
		t.Errorf("Fingerprint = %q, Recorded = %q", fp, Recorded(fp))
	}
	// A second hop records its own transform only.
	if got := (Chain{}).Fingerprint(fp); got != "abc" {
		t.Errorf("empty chain over a recorded fingerprint = %q", got)
	}
	if got := c.Fingerprint(""); got != "" {
		t.Errorf("no source fingerprint = %q", got)
	}
}

func TestDropPersonal(t *testing.T) {
	c := Chain{DropMetrics{"x"}, DropPersonal{}}
	back, err := Parse(c.String())
	if err != nil || !reflect.DeepEqual(back, c) {
		t.Fatalf("Parse(%q) = %v, %v", c.String(), back, err)
	}
	if _, err := Parse("drop-personal=host"); err == nil {
		t.Error("drop-personal with another value parsed")
	}
	in := schema.Run{Name: "r", User: "alice", Host: "gpu-node-7.example.org",
		Tags: []schema.Tag{{Key: "wandb.email", Value: "alice@example.org"}, {Key: "wandb.os", Value: "Linux"},
			{Key: "wandb.username", Value: "alice-laptop"}}}
	orig := in
	origTags := append([]schema.Tag(nil), in.Tags...)
	// The run's user is attribution: the default keeps it; the machine's
	// login name goes.
	got, left := c.Run(in)
	want := schema.Run{Name: "r", User: "alice", Tags: []schema.Tag{{Key: "wandb.os", Value: "Linux"}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Run = %+v, want %+v", got, want)
	}
	if !reflect.DeepEqual(left, []string{"host name", "e-mail address (tag wandb.email)", "login name (tag wandb.username)"}) {
		t.Errorf("left out %q", left)
	}
	if !reflect.DeepEqual(orig.Tags, origTags) || orig.Host != "gpu-node-7.example.org" || orig.User != "alice" {
		t.Errorf("the input run was changed: %+v", orig)
	}
	if got, left := c.Run(want); !reflect.DeepEqual(got, want) || left != nil {
		t.Errorf("a run without personal data: %+v, %q", got, left)
	}
	// With User (--drop-user) the user goes too, named; it records the
	// former default's value, which parses back as it.
	cu := Chain{DropPersonal{User: true}}
	if cu.String() != "drop-personal=host,email,executable,root,args,username,home" || cu.String() == c[1:].String() {
		t.Errorf("with User: %q", cu.String())
	}
	if back, err := Parse(cu.String()); err != nil || !reflect.DeepEqual(back, cu) {
		t.Fatalf("Parse(%q) = %v, %v", cu.String(), back, err)
	}
	got, left = cu.Run(in)
	want.User = ""
	if !reflect.DeepEqual(got, want) {
		t.Errorf("with User: Run = %+v, want %+v", got, want)
	}
	if !reflect.DeepEqual(left, []string{"host name", "e-mail address (tag wandb.email)", "login name (tag wandb.username)", "user name"}) {
		t.Errorf("with User: left out %q", left)
	}
}

// TestSameFingerprint: a run copied under the former default (which
// dropped the user) is the same under the current default only when it
// has no user; any other difference is a change.
func TestSameFingerprint(t *testing.T) {
	fp := "src-fp-1"
	former := Chain{DropMetrics{"x"}, DropPersonal{User: true}}.Fingerprint(fp)
	now := Chain{DropMetrics{"x"}, DropPersonal{}}.Fingerprint(fp)
	for _, c := range []struct {
		have, want, user string
		same             bool
	}{
		{now, now, "alice", true},
		{former, now, "", true},
		{former, now, "alice", false}, // written again: it gains its user
		{now, former, "", false},      // --drop-user after a default copy
		{Chain{DropPersonal{User: true}}.Fingerprint(fp), now, "", false}, // another chain
		{Chain{DropMetrics{"x"}, DropPersonal{User: true}}.Fingerprint("src-fp-2"), now, "", false},
		{"", now, "", false},
		{Chain{DropMetrics{"x"}, DropPersonal{former: formerPaths}}.Fingerprint(fp), now, "", false},
	} {
		if got := SameFingerprint(c.have, c.want, schema.Run{User: c.user}); got != c.same {
			t.Errorf("SameFingerprint(%q, %q, user %q) = %v", c.have, c.want, c.user, got)
		}
	}
}

func TestDropPersonalTags(t *testing.T) {
	in := schema.Run{Tags: []schema.Tag{{Key: "wandb.args", Value: `["--lr","0.1"]`}, {Key: "wandb.executable", Value: "/home/alice/.venv/bin/python"},
		{Key: "wandb.os", Value: "Linux"}, {Key: "wandb.python", Value: "3.12"}, {Key: "wandb.root", Value: "/home/alice/proj"}}}
	got, left := DropPersonal{}.Run(in)
	want := []schema.Tag{{Key: "wandb.os", Value: "Linux"}, {Key: "wandb.python", Value: "3.12"}}
	if !reflect.DeepEqual(got.Tags, want) {
		t.Errorf("tags %+v, want %+v", got.Tags, want)
	}
	if !reflect.DeepEqual(left, []string{"command line (tag wandb.args)", "local path (tag wandb.executable)", "local path (tag wandb.root)"}) {
		t.Errorf("left out %q", left)
	}
	// The step recorded by earlier versions still parses, as what it did.
	c, err := Parse("drop-personal=host,email")
	if err != nil || c.String() != "drop-personal=host,email" {
		t.Fatalf("former step: %v, %v", c, err)
	}
	if got, left := c.Run(in); !reflect.DeepEqual(got.Tags, in.Tags) || left != nil {
		t.Errorf("former step: %+v, %q", got.Tags, left)
	}
	if c.String() == (Chain{DropPersonal{}}).String() {
		t.Error("the former and the current step have one name")
	}
}

func TestDropPersonalMetadataFile(t *testing.T) {
	file := func(path, content string) schema.Artifact {
		return schema.Artifact{Path: path, Size: int64(len(content)), Digest: "sha256:x",
			Open: func(context.Context) (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(content)), nil }}
	}
	read := func(a schema.Artifact) string {
		rc, err := a.Open(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		b, err := io.ReadAll(rc)
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(b)) != a.Size {
			t.Errorf("%s: size %d, content %d bytes", a.Path, a.Size, len(b))
		}
		sum := sha256.Sum256(b)
		if a.Digest != "sha256:"+hex.EncodeToString(sum[:]) {
			t.Errorf("%s: digest %s does not match the content", a.Path, a.Digest)
		}
		return string(b)
	}
	c := Chain{DropMetrics{"x"}, DropPersonal{}}
	ctx := context.Background()
	md := `{
    "os": "Linux-6.8",
    "python": "CPython 3.12.3",
    "args": ["--data", "/home/alice/data"],
    "program": "train.py",
    "email": "alice@example.org",
    "root": "/home/alice/proj",
    "host": "gpu-node-7",
    "username": "alice",
    "executable": "/home/alice/proj/.venv/bin/python",
    "git": {"remote": "https://example.org/x.git", "commit": "abc"},
    "gpu_count": 1
}`
	got, left, err := c.Artifact(ctx, file("wandb-metadata.json", md))
	if err != nil {
		t.Fatal(err)
	}
	want := `{
    "os": "Linux-6.8",
    "python": "CPython 3.12.3",
    "program": "train.py",
    "git": {
        "remote": "https://example.org/x.git",
        "commit": "abc"
    },
    "gpu_count": 1
}
`
	if s := read(got); s != want {
		t.Errorf("wandb-metadata.json:\n%s\nwant\n%s", s, want)
	}
	if !reflect.DeepEqual(left, []string{"field args of wandb-metadata.json", "field email of wandb-metadata.json",
		"field root of wandb-metadata.json", "field host of wandb-metadata.json", "field username of wandb-metadata.json",
		"field executable of wandb-metadata.json"}) {
		t.Errorf("left out %q", left)
	}
	// Applied again (a copy of a copy), it changes nothing: same bytes.
	again, left, err := c.Artifact(ctx, got)
	if err != nil || left != nil || read(again) != want {
		t.Errorf("second pass: %q, %v", left, err)
	}
	// Other files, one in a folder of that name, and the former step: untouched.
	for _, tc := range []struct {
		c Chain
		a schema.Artifact
	}{{c, file("media/wandb-metadata.json", md)}, {c, file("output.log", "x")}, {Chain{DropPersonal{former: formerHostEmail}}, file("wandb-metadata.json", md)}} {
		got, left, err := tc.c.Artifact(ctx, tc.a)
		if err != nil || left != nil || got.Digest != "sha256:x" {
			t.Errorf("%s through %s: changed (%q, %v)", tc.a.Path, tc.c, left, err)
		}
	}
	// A metadata file that is not a JSON object is an error naming it.
	for _, bad := range []string{`["host"]`, `{"host": "x"`, `{"a":1} {}`, ``} {
		_, _, err := c.Artifact(ctx, file("wandb-metadata.json", bad))
		if err == nil || !strings.Contains(err.Error(), "wandb-metadata.json") || fault.KindOf(err) != fault.KindPermanent {
			t.Errorf("%q: err %v", bad, err)
		}
	}
}

func TestHomeFolders(t *testing.T) {
	for in, want := range map[string]string{
		"/Users/alice/proj/train.py":            "~/proj/train.py",
		"/home/bob":                             "~",
		`C:\Users\Carol Smith\run.py`:           `~\run.py`,
		"C:/Users/carol/run.py":                 "~/run.py",
		"python /home/bob/a.py --out=/home/bob": "python ~/a.py --out=~",
		"error: open '/Users/al/Library/Application Support/wandb/x': no such file": "error: open '~/Library/Application Support/wandb/x': no such file",
		"/home/":          "/home/",
		"/data/home/bob":  "/data/home/bob",
		"/homework/x":     "/homework/x",
		"train.py":        "train.py",
		"~/proj":          "~/proj",
		"https://h/Users": "https://h/Users",
	} {
		got, changed := HomeFolders(in)
		if got != want || changed != (in != want) {
			t.Errorf("HomeFolders(%q) = %q, %v; want %q", in, got, changed, want)
		}
	}
}

// TestDropPersonalHomeFolders: the home folders leave every
// field and file runferry writes (the program, tags, damage notes, file
// problems, W&B's metadata file at any depth), and nothing the user logged
// changes; the step recorded by versions 11 and 12 still does what it did.
func TestDropPersonalHomeFolders(t *testing.T) {
	in := schema.Run{User: "alice", Program: "/Users/alice/proj/train.py",
		Params: []schema.Param{{Key: "data", Value: "/Users/alice/data"}},
		Config: json.RawMessage(`{"data":"/Users/alice/data"}`), Notes: "see /Users/alice/notes",
		Tags:   []schema.Tag{{Key: "wandb.code_path", Value: "train.py"}, {Key: "wandb.program", Value: "/Users/alice/proj/train.py"}},
		Damage: []string{"/home/alice/wandb/run-1/run-1.wandb: offset 12: bad block"}}
	got, left := DropPersonal{}.Run(in)
	want := in
	want.Program = "~/proj/train.py" // the user stays: attribution
	want.Tags = []schema.Tag{{Key: "wandb.code_path", Value: "train.py"}, {Key: "wandb.program", Value: "~/proj/train.py"}}
	want.Damage = []string{"~/wandb/run-1/run-1.wandb: offset 12: bad block"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Run = %+v\nwant %+v", got, want)
	}
	if !reflect.DeepEqual(left, []string{"home folder (program)", "home folder (tag wandb.program)", "home folder (damage note)"}) {
		t.Errorf("left out %q", left)
	}
	if in.Tags[1].Value != "/Users/alice/proj/train.py" || in.Damage[0][0] != '/' {
		t.Error("the input run was changed")
	}
	former, err := Parse("drop-personal=host,email,executable,root,args")
	if err != nil || former.String() != "drop-personal=host,email,executable,root,args" || former.String() == (Chain{DropPersonal{}}).String() {
		t.Fatalf("former step: %v, %v", former, err)
	}
	if got, left := former.Run(in); !reflect.DeepEqual(got, in) || left != nil {
		t.Errorf("former step changed %+v, %q", got, left)
	}

	ctx := context.Background()
	problem := schema.Artifact{Path: "model.pt", Size: -1, Problem: "open /Users/alice/Library/Application Support/wandb/artifacts/staging/x: no such file"}
	a, left, err := DropPersonal{}.Artifact(ctx, problem)
	if err != nil || a.Problem != "open ~/Library/Application Support/wandb/artifacts/staging/x: no such file" ||
		!reflect.DeepEqual(left, []string{"home folder (problem of file model.pt)"}) {
		t.Errorf("problem: %q, %q, %v", a.Problem, left, err)
	}
	if a, _, _ := former.Artifact(ctx, problem); a.Problem != problem.Problem {
		t.Errorf("former step changed the problem: %q", a.Problem)
	}

	md := `{"os": "Linux", "username": "alice", "program": "/home/alice/proj/train.py", "codePath": "train.py",
 "disk": {"/home/alice": {"total": 1e12}}, "paths": ["C:\\Users\\al\u00e9x\\x", 1.50, true, null], "url": "a<b>&c"}`
	open := func(context.Context) (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(md)), nil }
	a, left, err = DropPersonal{}.Artifact(ctx, schema.Artifact{Path: MetadataFile, Size: int64(len(md)), Open: open})
	if err != nil {
		t.Fatal(err)
	}
	rc, _ := a.Open(ctx)
	b, _ := io.ReadAll(rc)
	wantMD := `{
    "os": "Linux",
    "program": "~/proj/train.py",
    "codePath": "train.py",
    "disk": {
        "~": {
            "total": 1e12
        }
    },
    "paths": [
        "~\\x",
        1.50,
        true,
        null
    ],
    "url": "a<b>&c"
}
`
	if string(b) != wantMD {
		t.Errorf("wandb-metadata.json:\n%s\nwant\n%s", b, wantMD)
	}
	if !reflect.DeepEqual(left, []string{"field username of wandb-metadata.json", "home folder (field program of wandb-metadata.json)",
		"home folder (field disk of wandb-metadata.json)", "home folder (field paths of wandb-metadata.json)"}) {
		t.Errorf("left out %q", left)
	}
	// The former step leaves the user name and home folders.
	a, left, err = former.Artifact(ctx, schema.Artifact{Path: MetadataFile, Size: int64(len(md)), Digest: "sha256:x", Open: open})
	if err != nil || left != nil || a.Digest != "sha256:x" {
		t.Errorf("former step: %q, %v", left, err)
	}
}
