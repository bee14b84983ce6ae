//go:build unix

package parquetdir

import "golang.org/x/sys/unix"

// writable reports whether this process may write p (a folder: create
// files in it), without writing.
func writable(p string) error {
	mode := uint32(unix.W_OK)
	return unix.Access(p, mode)
}
