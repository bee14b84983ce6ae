//go:build unix

package archive

import (
	"fmt"
	"os"
	"syscall"
)

// takeLock takes a shared or exclusive lock on f (flock), waiting for it
// or failing at once; the kernel releases it when the process dies. Taking
// another kind of lock on a file already locked converts the lock, not
// atomically (another process may get in between).
func takeLock(f *os.File, exclusive, wait bool) error {
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
	}
	if !wait {
		how |= syscall.LOCK_NB
	}
	for {
		err := syscall.Flock(int(f.Fd()), how)
		if err != syscall.EINTR {
			return err
		}
	}
}

// dropLock releases the lock takeLock took.
func dropLock(f *os.File) error { return syscall.Flock(int(f.Fd()), syscall.LOCK_UN) }

// sysIdentity returns a file's device and inode numbers.
func sysIdentity(fi os.FileInfo) string {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return fmt.Sprintf("%d:%d", st.Dev, st.Ino)
	}
	return ""
}
