package wandbtest

import (
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// W&B Artifacts.
//
// A project's Artifacts are its artifact versions; a run lists those it
// logged (Run.Logged: run { outputArtifacts }) and used (Run.Used: run {
// inputArtifacts }), cursor-paged, each with the fields of the SDK's
// ArtifactFragment and currentManifest { file { directUrl } }. Query
// artifact(id) answers the SDK's FetchArtifactManifest, and project {
// artifactCollection(name) { artifactMembership(aliasName) { files } } }
// its GetArtifactMembershipFileUrls (the stored entries: name and a signed
// directUrl). GET /artifactstore/PROJECT/NAME/VERSION/manifest serves the
// manifest JSON (version 1, storage policy wandb-storage-policy-v1, as the
// SDK writes it), .../file/HEXMD5 an entry's content, both signed as the
// export files are (SetURLTTL applies). An entry without Content (lost
// before upload) is in the manifest but not among the files.

// Artifact is an artifact version held by the server.
type Artifact struct {
	ID           string // the GraphQL id; derived when empty
	Name         string // the collection (sequence) name
	Type         string
	VersionIndex int
	Digest       string // hex MD5 of the manifest, as the SDK computes it
	Description  string
	Metadata     json.RawMessage // a JSON object, or nil
	Aliases      []string
	Tags         []string
	CreatedAt    time.Time
	Entries      []ArtifactEntry // sorted by path
}

// ArtifactEntry is one manifest entry; Content is nil for a reference
// and for content the server does not hold.
type ArtifactEntry struct {
	Path    string
	Digest  string // base64 MD5
	Size    int64
	Ref     string
	Content []byte
}

func (a *Artifact) id() string {
	if a.ID != "" {
		return a.ID
	}
	return ArtifactID(a.Name, a.VersionIndex)
}

// ArtifactID is the GraphQL id the server gives version index of name
// when Artifact.ID is empty.
func ArtifactID(name string, index int) string {
	return base64.StdEncoding.EncodeToString([]byte("Artifact:" + name + ":" + strconv.Itoa(index)))
}

func (a *Artifact) version() string { return "v" + strconv.Itoa(a.VersionIndex) }

// ManifestJSON is the version's manifest as W&B stores it.
func (a *Artifact) ManifestJSON() []byte {
	contents := map[string]any{}
	for _, e := range a.Entries {
		m := map[string]any{"digest": e.Digest, "size": e.Size}
		if e.Ref != "" {
			m["ref"] = e.Ref
		} else {
			m["birthArtifactID"] = a.id()
		}
		contents[e.Path] = m
	}
	b, _ := json.Marshal(map[string]any{"version": 1, "storagePolicy": "wandb-storage-policy-v1",
		"storagePolicyConfig": map[string]any{"storageLayout": "V2"}, "contents": contents})
	return b
}

// artifactCounters count the artifact downloads served.
type artifactCounters struct {
	manifests, files atomic.Int64
}

// ArtifactManifestDownloads counts the artifact manifests served.
func (s *Server) ArtifactManifestDownloads() int64 { return s.artifacts.manifests.Load() }

// ArtifactFileDownloads counts the artifact entry files served.
func (s *Server) ArtifactFileDownloads() int64 { return s.artifacts.files.Load() }

func (s *Server) artifactPath(p *Project, a *Artifact) string {
	return "/artifactstore/" + p.Name + "/" + a.Name + "/" + a.version()
}

func (s *Server) artifactObject(p *Project, a *Artifact) *object {
	proj := &object{typ: "Project", fields: map[string]func(map[string]any) (any, error){
		"id": field(base64.StdEncoding.EncodeToString([]byte("Project:" + p.Name))), "internalId": field(strconv.Itoa(s.projectNumber(p))), // a string here, as the SDK's artifact models read it
		"name": field(p.Name),
		"entity": field(&object{typ: "Entity", fields: map[string]func(map[string]any) (any, error){
			"id": field(s.data.Entity), "name": field(s.data.Entity)}}),
	}}
	coll := func(typ string) *object {
		return &object{typ: typ, fields: map[string]func(map[string]any) (any, error){
			"id": field(base64.StdEncoding.EncodeToString([]byte("ArtifactCollection:" + a.Name))), "name": field(a.Name), "project": field(proj)}}
	}
	var aliases []*object
	for _, al := range a.Aliases {
		aliases = append(aliases, &object{typ: "ArtifactAlias", fields: map[string]func(map[string]any) (any, error){
			"id": field(base64.StdEncoding.EncodeToString([]byte("ArtifactAlias:" + a.Name + ":" + al))), "alias": field(al),
			"artifactCollection": field(coll("ArtifactSequence")),
		}})
	}
	tags := []*object{}
	for _, t := range a.Tags {
		tags = append(tags, &object{typ: "Tag", fields: map[string]func(map[string]any) (any, error){
			"id": field(base64.StdEncoding.EncodeToString([]byte("Tag:" + t))), "name": field(t)}})
	}
	var size int64
	files := 0
	for _, e := range a.Entries {
		size += e.Size
		if e.Ref == "" {
			files++
		}
	}
	desc := any(nil)
	if a.Description != "" {
		desc = a.Description
	}
	meta := "{}"
	if len(a.Metadata) > 0 {
		meta = string(a.Metadata)
	}
	return &object{typ: "Artifact", fields: map[string]func(map[string]any) (any, error){
		"id":                 field(a.id()),
		"artifactSequence":   field(coll("ArtifactSequence")),
		"versionIndex":       field(a.VersionIndex),
		"artifactType":       field(&object{typ: "ArtifactType", fields: map[string]func(map[string]any) (any, error){"name": field(a.Type)}}),
		"description":        field(desc),
		"metadata":           field(meta),
		"ttlDurationSeconds": field(-1),
		"ttlIsInherited":     field(true),
		"tags":               field(tags),
		"historyStep":        field(nil),
		"state":              field("COMMITTED"),
		"size":               field(size),
		"digest":             field(a.Digest),
		"digestAlgorithm":    field("MANIFEST_MD5"),
		"commitHash":         field(a.Digest[:min(len(a.Digest), 12)]),
		"fileCount":          field(files),
		"createdAt":          field(timeString(a.CreatedAt)),
		"updatedAt":          field(timeString(a.CreatedAt)),
		"aliases":            field(aliases),
		"currentManifest": field(&object{typ: "ArtifactManifest", fields: map[string]func(map[string]any) (any, error){
			"file": field(&object{typ: "File", fields: map[string]func(map[string]any) (any, error){
				"directUrl": func(map[string]any) (any, error) { return s.signedURL(s.artifactPath(p, a) + "/manifest"), nil },
			}}),
		}}),
	}}
}

// artifactByID finds a version by its GraphQL id.
func (s *Server) artifactByID(id string) (*Project, *Artifact) {
	for _, p := range s.data.Projects {
		for _, a := range p.Artifacts {
			if a.id() == id {
				return p, a
			}
		}
	}
	return nil, nil
}

// artifactCollection answers project { artifactCollection(name) }.
func (s *Server) artifactCollection(p *Project, name string) *object {
	var versions []*Artifact
	for _, a := range p.Artifacts {
		if a.Name == name {
			versions = append(versions, a)
		}
	}
	if len(versions) == 0 {
		return nil
	}
	return &object{typ: "ArtifactSequence", fields: map[string]func(map[string]any) (any, error){
		"id":   field(base64.StdEncoding.EncodeToString([]byte("ArtifactCollection:" + name))),
		"name": field(name),
		"artifactMembership": func(args map[string]any) (any, error) {
			alias, _ := args["aliasName"].(string)
			for _, a := range versions {
				if a.version() == alias || contains(a.Aliases, alias) {
					return s.membership(p, a), nil
				}
			}
			return (*object)(nil), nil
		},
	}}
}

func (s *Server) membership(p *Project, a *Artifact) *object {
	return &object{typ: "ArtifactCollectionMembership", fields: map[string]func(map[string]any) (any, error){
		"id":       field(a.id()),
		"artifact": field(s.artifactObject(p, a)),
		"files": func(args map[string]any) (any, error) {
			var stored []ArtifactEntry
			for _, e := range a.Entries {
				if e.Ref == "" && e.Content != nil {
					stored = append(stored, e)
				}
			}
			return pageOf("FileConnection", stored, args, func(e ArtifactEntry) *object {
				return &object{typ: "File", fields: map[string]func(map[string]any) (any, error){
					"id":        field(base64.StdEncoding.EncodeToString([]byte("File:" + a.id() + ":" + e.Path))),
					"name":      field(e.Path),
					"sizeBytes": field(e.Size),
					"md5":       field(e.Digest),
					"directUrl": func(map[string]any) (any, error) {
						return s.signedURL(s.artifactPath(p, a) + "/file/" + hexMD5(e.Digest)), nil
					},
				}}
			})
		},
	}}
}

func hexMD5(b64 string) string {
	raw, _ := base64.StdEncoding.DecodeString(b64)
	return hex.EncodeToString(raw)
}

// serveArtifact answers GET /artifactstore/PROJECT/NAME/VERSION/{manifest,file/HEX}.
func (s *Server) serveArtifact(w http.ResponseWriter, r *http.Request) {
	exp, err := strconv.ParseInt(r.URL.Query().Get("expires"), 10, 64)
	if err != nil || r.URL.Query().Get("sig") != s.sign(r.URL.Path, exp) {
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, `<Error><Code>SignatureDoesNotMatch</Code></Error>`)
		return
	}
	if exp != 0 && time.Now().UnixNano() > exp {
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, `<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>`)
		return
	}
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/artifactstore/"), "/")
	if len(parts) < 4 {
		http.NotFound(w, r)
		return
	}
	for _, p := range s.data.Projects {
		if p.Name != parts[0] {
			continue
		}
		for _, a := range p.Artifacts {
			if a.Name != parts[1] || a.version() != parts[2] {
				continue
			}
			switch {
			case len(parts) == 4 && parts[3] == "manifest":
				s.artifacts.manifests.Add(1)
				w.Header().Set("Content-Type", "application/json")
				w.Write(a.ManifestJSON())
				return
			case len(parts) == 5 && parts[3] == "file":
				for _, e := range a.Entries {
					if e.Content != nil && e.Ref == "" && hexMD5(e.Digest) == parts[4] {
						s.artifacts.files.Add(1)
						w.Header().Set("Content-Type", "application/octet-stream")
						w.Header().Set("Content-Length", strconv.Itoa(len(e.Content)))
						w.Write(e.Content)
						return
					}
				}
			}
		}
	}
	http.NotFound(w, r)
}

// entryDigest is the base64 MD5 of b.
func entryDigest(b []byte) string {
	sum := md5.Sum(b)
	return base64.StdEncoding.EncodeToString(sum[:])
}
