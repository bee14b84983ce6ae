//go:build unix

package main

import (
	"errors"
	"os"
	"syscall"
)

// flockExclusive takes an exclusive flock on f without waiting; held
// reports that another open file description holds it.
func flockExclusive(f *os.File) (held bool, err error) {
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		switch {
		case err == nil:
			return false, nil
		case errors.Is(err, syscall.EWOULDBLOCK):
			return true, nil
		case !errors.Is(err, syscall.EINTR):
			return false, err
		}
	}
}

// funlock drops the flock of f's open file: the lock is free at once, even
// while another descriptor of that open file lives on (a child process
// between its fork and its exec holds one), which closing f alone would
// leave holding it.
func funlock(f *os.File) { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN) }
