// Command s3upload times runferry's object-storage upload alone: it uploads
// every Parquet file of a local archive (the files bench/py/s3_write.py
// writes with pyarrow) to an archive location through archive.Store, as
// the archive writer does, and prints {"files", "bytes", "seconds"} as one
// JSON line. bench/s3.sh runs it beside pyarrow on the same server.
//
//	s3upload -src LOCAL_ARCHIVE -to 's3://BUCKET/PREFIX?endpoint=...&path-style=true' [-staged] [-parallel N]
//
// -staged uploads each file under .staging/ and moves it into place (a
// server-side copy and a delete), as a committed data file travels; without
// it each file is uploaded straight to its key. -parallel uploads N files at
// once (1: one after another, as one run's files are).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/runferry/runferry/internal/archive"
)

func main() {
	src := flag.String("src", "", "local archive whose *.parquet files to upload")
	to := flag.String("to", "", "archive location in object storage")
	staged := flag.Bool("staged", false, "upload under .staging/ and move into place, as the archive writer does")
	parallel := flag.Int("parallel", 1, "files uploaded at once")
	flag.Parse()
	if err := run(*src, *to, *staged, *parallel); err != nil {
		fmt.Fprintln(os.Stderr, "s3upload:", err)
		os.Exit(1)
	}
}

func run(src, to string, staged bool, parallel int) error {
	var files []string
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".parquet") && !strings.Contains(p, "/history/") && !strings.Contains(p, "/.staging/") {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		return err
	}
	st, err := archive.OpenStore(to)
	if err != nil {
		return err
	}
	defer st.Close()
	var bytes atomic.Int64
	work := make(chan string)
	errs := make(chan error, parallel)
	var wg sync.WaitGroup
	start := time.Now()
	for range max(1, parallel) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range work {
				n, err := upload(st, src, p, staged)
				bytes.Add(n)
				if err != nil {
					errs <- err
					for range work {
					}
					return
				}
			}
		}()
	}
	for _, p := range files {
		work <- p
	}
	close(work)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	secs := time.Since(start).Seconds()
	return json.NewEncoder(os.Stdout).Encode(map[string]any{"files": len(files), "bytes": bytes.Load(), "seconds": float64(int(secs*1000)) / 1000})
}

func upload(st archive.Store, src, p string, staged bool) (int64, error) {
	rel, err := filepath.Rel(src, p)
	if err != nil {
		return 0, err
	}
	rel = filepath.ToSlash(rel)
	key := rel
	if staged {
		key = ".staging/" + rel
	}
	f, err := os.Open(p)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	w, err := st.Create(key)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(w, f)
	if err != nil {
		w.Abort()
		return n, err
	}
	if err := w.Commit(); err != nil {
		return n, err
	}
	if staged {
		return n, st.Move(key, rel)
	}
	return n, nil
}
