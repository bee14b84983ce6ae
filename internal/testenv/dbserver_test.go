package testenv

import (
	"fmt"
	"sync"
	"testing"
)

// TestDBServersStartConcurrently starts several MariaDB and PostgreSQL
// servers at once, as test binaries run in parallel (go test -p 2) do, and
// checks that each started and answers as itself: a database created in one
// is seen by no other.
//
// The race it catches is timing-dependent: before MariaDB's setup got its
// own TMPDIR, two binaries running this test at once failed
// (mariadb-install-db: "Unknown table 'mysql.tmp_user_sys'") in 1 of 3
// rounds with n = 2 and 3 of 3 with n = 3 (where the load also made some
// servers miss their 60 s start); after, 6 of 6 rounds passed.
func TestDBServersStartConcurrently(t *testing.T) {
	const n = 2
	var wg sync.WaitGroup
	mariadbs := make([]*MariaDB, n)
	pgs := make([]*Postgres, n)
	errs := make([]error, 2*n)
	for i := 0; i < n; i++ {
		wg.Add(2)
		go func(i int) { defer wg.Done(); mariadbs[i], errs[i] = startMariaDB() }(i)
		go func(i int) { defer wg.Done(); pgs[i], errs[n+i] = startPostgres() }(i)
	}
	wg.Wait()
	t.Cleanup(func() {
		for i := 0; i < n; i++ {
			if mariadbs[i] != nil {
				mariadbs[i].Stop()
			}
			if pgs[i] != nil {
				pgs[i].Stop()
			}
		}
	})
	for _, err := range errs {
		if err != nil && isMissingBinaries(err) {
			Unavailable(t, "MariaDB and PostgreSQL", err.Error())
		}
		if err != nil {
			t.Errorf("start: %v", err)
		}
	}
	if t.Failed() {
		return
	}
	for i := 0; i < n; i++ {
		mariadbs[i].CreateDatabase(t, fmt.Sprintf("own_%d", i))
		pgs[i].CreateDatabase(t, fmt.Sprintf("own_%d", i))
	}
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			err := mariadbs[i].Exec("", fmt.Sprintf("USE own_%d", j))
			if (err == nil) != (i == j) {
				t.Errorf("MariaDB %d (port %d): database own_%d seen: %v, want %v", i, mariadbs[i].Port, j, err == nil, i == j)
			}
		}
	}
}
