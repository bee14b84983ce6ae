package archive

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
)

// errNoExchange: the platform or the file system cannot swap two folders
// in one step (exchange); the caller moves the files one by one instead.
var errNoExchange = errors.New("atomic folder exchange not supported")

// folderSwapper is a Store that can replace the set of files of one
// folder by another in one atomic step, so that a reader listing the
// folder (a glob over metrics/) sees the old set or the new one, never
// a part of each. dirStore on Linux is one; object storage has no atomic
// change of several objects.
type folderSwapper interface {
	// SwapFolder makes dir hold, in one step, every file it held except
	// those named in leave, plus every file named in staged (file names
	// within dir, staged under .staging/dir/). Before the step each file
	// of leave is linked under history/dir/, so that it stays readable
	// there whatever happens next; after it the staged copies and the
	// folder's old entry are removed. A crash at any point leaves dir as
	// it was or as asked, and the recovery rule finishes the rest (moving
	// a leave file still in dir onto its link in history/, moving staged
	// files into place, deleting .staging/). It returns errNoExchange,
	// having changed nothing a reader of dir sees, where the step is not
	// possible; the caller then moves the files one by one.
	SwapFolder(dir string, leave, staged []string) error
}

// moveHook, when set (tests), is called at each step of a commit's moves:
// "left" after moveCommitted moved the superseded files out (the file by
// file order), "prepared" and "swapped" around SwapFolder's exchange.
var moveHook func(step string)

func (d *dirStore) SwapFolder(dir string, leave, staged []string) error {
	full := d.full(dir)
	hist := d.full(path.Join(historyDir, dir))
	if err := os.MkdirAll(hist, dirMode); err != nil {
		return err
	}
	for _, name := range leave {
		err := os.Link(filepath.Join(full, name), filepath.Join(hist, name))
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrExist) {
			continue // lost since its commit, or linked by an attempt cut off before
		}
		if err != nil {
			return noExchange(err)
		}
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return err
	}
	next := d.full(path.Join(stagingDir, ".swap-"+hex.EncodeToString(b[:])))
	if err := os.MkdirAll(next, dirMode); err != nil {
		return err
	}
	defer os.RemoveAll(next) // after the exchange: the folder's old entry
	for _, name := range staged {
		if err := os.Link(d.full(path.Join(stagingDir, dir, name)), filepath.Join(next, name)); err != nil {
			return noExchange(err)
		}
	}
	gone := map[string]bool{}
	for _, name := range leave {
		gone[name] = true
	}
	ents, err := os.ReadDir(full)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if gone[e.Name()] || e.IsDir() {
			continue
		}
		err := os.Link(filepath.Join(full, e.Name()), filepath.Join(next, e.Name()))
		if errors.Is(err, fs.ErrExist) {
			continue // staged anew: the staged version wins
		}
		if err != nil {
			return noExchange(err)
		}
	}
	if moveHook != nil {
		moveHook("prepared")
	}
	if err := exchange(next, full); err != nil {
		return err
	}
	if moveHook != nil {
		moveHook("swapped")
	}
	for _, name := range staged {
		if err := os.Remove(d.full(path.Join(stagingDir, dir, name))); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// noExchange turns a failure to hard-link (a file system without links)
// into errNoExchange, so that the caller falls back to moving files.
func noExchange(err error) error {
	var le *os.LinkError
	if errors.As(err, &le) && (errors.Is(err, errors.ErrUnsupported) || errors.Is(err, fs.ErrPermission)) {
		return errNoExchange
	}
	return err
}
