package main

import (
	"runtime/debug"
	"strings"
)

// Values set at build time with -ldflags "-X main.NAME=VALUE". version (release builds)
// overrides the module version of the build info. The vcs* values are what `make build`
// passes from git (revision, commit time, "true" for uncommitted changes); they fill in when
// the build info has no VCS stamp, which go build leaves out in a git worktree (.git is a
// file there) and with -buildvcs=false.
var (
	version     = ""
	vcsRevision = ""
	vcsTime     = ""
	vcsModified = ""
)

// versionString is what `runferry version` and `runferry --version` print after "runferry ".
func versionString() string {
	bi, _ := debug.ReadBuildInfo()
	return describeVersion(version, withLinkerStamp(bi, vcsRevision, vcsTime, vcsModified))
}

// withLinkerStamp returns bi with the -X VCS values added where bi has no VCS stamp.
func withLinkerStamp(bi *debug.BuildInfo, revision, time, modified string) *debug.BuildInfo {
	if revision == "" {
		return bi
	}
	var out debug.BuildInfo
	if bi != nil {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return bi
			}
		}
		out = *bi
	}
	out.Settings = append(append([]debug.BuildSetting{}, out.Settings...),
		debug.BuildSetting{Key: "vcs.revision", Value: revision},
		debug.BuildSetting{Key: "vcs.time", Value: time},
		debug.BuildSetting{Key: "vcs.modified", Value: modified})
	return &out
}

// describeVersion renders the version from ldVersion (the -X main.version value, may be
// empty) and the binary's build info (may be nil):
//
//	VERSION (commit REVISION, TIME[, modified])
//
// VERSION is ldVersion, else the main module's version (a tag for `go install
// module@vX.Y.Z`, a pseudo-version for a `go build` in a git checkout), else "devel".
// REVISION and TIME are the VCS stamp (vcs.revision, vcs.time) that `go build` records in a
// checkout; "modified" says the checkout had uncommitted changes (vcs.modified). Without a
// VCS stamp the parenthesis is left out, and without any build info it says so.
func describeVersion(ldVersion string, bi *debug.BuildInfo) string {
	if bi == nil {
		if ldVersion != "" {
			return ldVersion
		}
		return "devel (no build information)"
	}
	v := ldVersion
	if v == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		v = bi.Main.Version
	}
	if v == "" {
		v = "devel"
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	var stamp []string
	if rev := settings["vcs.revision"]; rev != "" {
		stamp = append(stamp, "commit "+rev)
	}
	if t := settings["vcs.time"]; t != "" {
		stamp = append(stamp, t)
	}
	if settings["vcs.modified"] == "true" {
		stamp = append(stamp, "modified")
	}
	if len(stamp) == 0 {
		return v
	}
	return v + " (" + strings.Join(stamp, ", ") + ")"
}
