//go:build linux

package wandbdir

import (
	"io/fs"
	"syscall"
)

// identityOf is the identity of the file fi describes (see fileID); ok is
// false when the system tells no device, inode and change time, and then
// the file is never taken from the cache.
func identityOf(fi fs.FileInfo) (id fileID, ok bool) {
	st, isStat := fi.Sys().(*syscall.Stat_t)
	if !isStat {
		return fileID{Size: fi.Size(), Mtime: fi.ModTime().UnixNano()}, false
	}
	return fileID{
		Dev:   uint64(st.Dev),
		Ino:   uint64(st.Ino),
		Size:  fi.Size(),
		Mtime: fi.ModTime().UnixNano(),
		Ctime: st.Ctim.Nano(),
	}, true
}
