//go:build unix

package wandbdir

import (
	"io/fs"
	"os"
	"slices"
	"sync"
	"syscall"
)

// readableByMode reports whether fi's mode bits let this process read the
// file: its owner's read bit when the process's effective user owns it,
// else its group's when the file's group is one of the process's, else
// the others' (the POSIX order: the first class that matches decides).
// false means "not shown readable" (the caller then opens the file, which
// also covers root and capabilities). A POSIX ACL entry for this user or
// a security module (SELinux, AppArmor) can still deny what the bits
// grant: such a file is found unreadable when a copy opens it, where it
// is reported.
func readableByMode(fi fs.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return false
	}
	ids := processIDs()
	return modeGrantsRead(fi.Mode().Perm(), st.Uid, st.Gid, ids.uid, ids.gids)
}

// modeGrantsRead is readableByMode's rule: perm's owner, group or other
// read bit, whichever class (uid, gid) puts the process (euid, gids) in.
func modeGrantsRead(perm fs.FileMode, uid, gid, euid uint32, gids []uint32) bool {
	switch {
	case uid == euid:
		return perm&0o400 != 0
	case slices.Contains(gids, gid):
		return perm&0o040 != 0
	default:
		return perm&0o004 != 0
	}
}

type ids struct {
	uid  uint32
	gids []uint32 // the effective group and the supplementary groups
}

// processIDs are the process's effective user and groups, read once.
var processIDs = sync.OnceValue(func() ids {
	v := ids{uid: uint32(os.Geteuid()), gids: []uint32{uint32(os.Getegid())}}
	if gs, err := os.Getgroups(); err == nil {
		for _, g := range gs {
			v.gids = append(v.gids, uint32(g))
		}
	}
	return v
})
