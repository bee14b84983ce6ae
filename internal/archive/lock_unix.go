//go:build unix

package archive

import (
	"os"
	"syscall"
)

// lockFileExclusive takes an exclusive, non-blocking lock on f, released by
// the kernel when the process dies.
func lockFileExclusive(f *os.File) error {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
}
