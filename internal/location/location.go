// Package location parses and redacts location strings such as
// "wandb:/data/wandb", "parquet:/backups/mlflow",
// "mlflow+https://alice@mlflow.example.com/prefix?experiment-prefix=wb-"
// and "postgres://user@db/runs". Secrets are not meant to be given in a
// location: a registry refuses them (see CheckSecrets), and Redact hides
// them wherever one was typed anyway.
//
// A location names its adapter by scheme, as in restic and rclone. Schemes
// come in two shapes: path schemes ("wandb:PATH"), whose rest is a local path,
// and URL schemes ("mlflow+https://HOST/..."), whose rest is a URL.
package location

import (
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
)

// Location is a parsed location string.
type Location struct {
	Scheme string // the adapter's scheme: "wandb", "mlflow+https", "sqlite", ...
	// Path is the local path of a path scheme (absolute or relative, as
	// given, with any query removed).
	Path string
	// URL is the parsed location for a URL scheme; for a path scheme it
	// holds only the query.
	URL *url.URL
	raw string
}

// String returns the location redacted: passwords, tokens and other secret
// values are replaced by "***". It is the only form that may be printed,
// logged or stored.
func (l Location) String() string { return Redact(l.raw) }

// Query returns the value of option name given in the location's query.
func (l Location) Query(name string) string {
	if l.URL == nil {
		return ""
	}
	return l.URL.Query().Get(name)
}

// Kind says how the rest of a location after its scheme is read.
type Kind int

const (
	// PathKind: "scheme:PATH", where PATH is a local file or folder.
	PathKind Kind = iota
	// URLKind: "scheme://host/...", a network address.
	URLKind
	// StoreKind: "scheme:PATH" as PathKind, or "scheme:s3://BUCKET/PREFIX",
	// a prefix in object storage (Path holds the inner URL without its
	// query; the options are in the location's query).
	StoreKind
)

// ObjectStoreSchemes are the inner URL schemes a StoreKind location takes.
var ObjectStoreSchemes = []string{"s3", "gs", "azblob"}

// credentialSources names, for messages, where each object store's
// credentials come from.
var credentialSources = map[string]string{
	"s3":     "AWS_ACCESS_KEY_ID, AWS_PROFILE, ...",
	"gs":     "Google's Application Default Credentials: GOOGLE_APPLICATION_CREDENTIALS, gcloud auth application-default login, ...",
	"azblob": "AZURE_STORAGE_ACCOUNT with AZURE_STORAGE_KEY, a managed identity, ...",
}

// Parse splits raw into scheme and rest, checking the rest's shape against
// kind(scheme). kind returns false for a scheme no adapter has. Errors say
// what was probably meant.
//
// A path scheme's rest must be a local path: a URL there
// ("wandb:s3://bucket/x", "wandb:https://...") is refused, since object
// storage and remote paths are not supported there; a StoreKind scheme
// (parquet:) takes an s3:// URL besides a path, and so is a path that is
// an MLflow store (an mlruns folder, an mlflow.db), which MLflow serves. To
// fit its suggestions to what a path holds, Parse looks at the path (its
// directory entries and a file's first bytes); it never writes.
func Parse(raw string, kind func(scheme string) (Kind, bool)) (Location, error) {
	if raw == "" {
		return Location{}, errors.New("empty location")
	}
	i := strings.Index(raw, ":")
	if i < 0 {
		if h := pathHint(raw); h != "" {
			return Location{}, fmt.Errorf("location %q has no scheme: %s", Redact(raw), h)
		}
		return Location{}, fmt.Errorf("location %q has no scheme: did you mean %q or %q? (see 'runferry backends')",
			Redact(raw), "wandb:"+Redact(raw), "parquet:"+Redact(raw))
	}
	scheme := strings.ToLower(raw[:i])
	rest := raw[i+1:]
	if len(scheme) == 1 && isLetter(scheme[0]) && (strings.HasPrefix(rest, `\`) || strings.HasPrefix(rest, "/")) {
		return Location{}, fmt.Errorf("location %q looks like a Windows path: prefix it with the scheme, e.g. %q",
			Redact(raw), "parquet:"+Redact(raw))
	}
	k, ok := kind(scheme)
	if !ok {
		if h := unknownSchemeHint(raw, scheme); h != "" {
			return Location{}, fmt.Errorf("location %q: unknown scheme %q: %s", Redact(raw), scheme, h)
		}
		return Location{}, fmt.Errorf("location %q: unknown scheme %q (see 'runferry backends' for the list)", Redact(raw), scheme)
	}
	loc := Location{Scheme: scheme, raw: raw}
	if k == StoreKind {
		path, query, _ := strings.Cut(rest, "?")
		if m := urlPrefix.FindStringSubmatch(path); m != nil && slices.Contains(ObjectStoreSchemes, strings.ToLower(m[1])) {
			u, err := url.Parse(path)
			if err != nil {
				return Location{}, fmt.Errorf("location %q is not a valid URL: %v", Redact(raw), redactErr(err))
			}
			if u.User != nil {
				return Location{}, fmt.Errorf("location %q: credentials do not belong in the location; they come from the environment (%s)", Redact(raw), credentialSources[strings.ToLower(m[1])])
			}
			if u.Host == "" {
				return Location{}, fmt.Errorf("location %q names no bucket: use %s:%s://BUCKET/PREFIX", Redact(raw), scheme, strings.ToLower(m[1]))
			}
			q, err := url.ParseQuery(query)
			if err != nil {
				return Location{}, fmt.Errorf("location %q: bad options: %v", Redact(raw), err)
			}
			loc.Path = strings.ToLower(m[1]) + "://" + u.Host + strings.TrimSuffix(u.Path, "/")
			loc.URL = &url.URL{RawQuery: q.Encode()}
			return loc, nil
		}
		for _, inner := range ObjectStoreSchemes {
			if len(path) > len(inner) && strings.EqualFold(path[:len(inner)+1], inner+":") {
				return Location{}, fmt.Errorf("location %q: write the bucket as a URL: %s:%s://BUCKET/PREFIX", Redact(raw), scheme, inner)
			}
		}
		k = PathKind
	}
	switch k {
	case PathKind:
		path, query, _ := strings.Cut(rest, "?")
		if err := refuseURLPath(raw, scheme, path); err != nil {
			return Location{}, err
		}
		if strings.HasPrefix(path, "//") {
			host, p, _ := strings.Cut(path[2:], "/")
			if host != "" && host != "localhost" {
				return Location{}, fmt.Errorf("location %q names host %q, but %s: takes a local path: use %s:/%s or %s:./%s",
					Redact(raw), Redact("//" + host)[2:], scheme, scheme, Redact("//" + host + "/" + p)[2:], scheme, Redact("//" + host + "/" + p)[2:])
			}
			path = "/" + p
		}
		if path == "" {
			return Location{}, fmt.Errorf("location %q has an empty path: use %s:PATH", Redact(raw), scheme)
		}
		q, err := url.ParseQuery(query)
		if err != nil {
			return Location{}, fmt.Errorf("location %q: bad options: %v", Redact(raw), err)
		}
		loc.Path = filepath.FromSlash(path)
		if err := refuseMLflowStorePath(raw, scheme, loc.Path); err != nil {
			return Location{}, err
		}
		loc.URL = &url.URL{RawQuery: q.Encode()}
	case URLKind:
		if !strings.HasPrefix(rest, "//") {
			return Location{}, fmt.Errorf("location %q: %s needs a URL such as %s://HOST[:PORT][/PATH]", Redact(raw), scheme, scheme)
		}
		u, err := url.Parse(raw)
		if err != nil {
			return Location{}, fmt.Errorf("location %q is not a valid URL: %v", Redact(raw), redactErr(err))
		}
		if u.Host == "" {
			return Location{}, fmt.Errorf("location %q has no host", Redact(raw))
		}
		loc.URL = u
	}
	return loc, nil
}

func isLetter(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }

// redactErr drops the URL that url.Parse errors quote, since it may hold a
// secret.
func redactErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
