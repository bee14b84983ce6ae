//go:build unix

package fault

import (
	"errors"
	"syscall"
)

// diskFull reports whether err says the file system cannot take more: no
// space, no quota or read-only. No run can be written then.
func diskFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) || errors.Is(err, syscall.EROFS)
}
