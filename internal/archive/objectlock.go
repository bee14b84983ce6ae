package archive

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// objectLock is the object-lock=MODE:PERIOD option of an s3:// archive:
// every object holding the archive's content is written with S3 Object
// Lock retention in MODE until PERIOD after it is written.
type objectLock struct {
	mode   types.ObjectLockRetentionMode
	period time.Duration
}

// until is the retain-until date of an object written now.
func (l *objectLock) until() time.Time { return time.Now().Add(l.period).UTC() }

// parseObjectLock parses MODE:PERIOD: MODE governance or compliance,
// PERIOD a number of days (30d), years (1y, 365 days each), or a Go
// duration (12h, 90m, 30s).
func parseObjectLock(v string) (*objectLock, error) {
	mode, period, ok := strings.Cut(v, ":")
	if !ok {
		return nil, errors.New("want MODE:PERIOD, e.g. governance:30d or compliance:1y")
	}
	l := &objectLock{}
	switch strings.ToLower(mode) {
	case "governance":
		l.mode = types.ObjectLockRetentionModeGovernance
	case "compliance":
		l.mode = types.ObjectLockRetentionModeCompliance
	default:
		return nil, fmt.Errorf("unknown mode %q: want governance or compliance", mode)
	}
	var err error
	switch {
	case strings.HasSuffix(period, "d") || strings.HasSuffix(period, "y"):
		n, perr := strconv.ParseInt(period[:len(period)-1], 10, 32)
		unit := 24 * time.Hour
		if strings.HasSuffix(period, "y") {
			unit *= 365
		}
		l.period, err = time.Duration(n)*unit, perr
	default:
		l.period, err = time.ParseDuration(period)
	}
	if err != nil || l.period <= 0 {
		return nil, fmt.Errorf("bad retention period %q: want a positive number of days (30d), years (1y) or a duration (12h)", period)
	}
	return l, nil
}

// retained reports whether the object at p holds the archive's content,
// which object-lock retains: data files (in their table folder and in
// history/), artifact bodies and snapshot manifests. Not retained are the
// objects the write protocol itself replaces or deletes: manifest.json and
// current.sql (rewritten at each publish; snapshots/<n>.json holds the
// same state), journal records, lock objects and .staging/.
func retained(p string) bool {
	top, _, _ := strings.Cut(p, "/")
	switch {
	case top == stagingDir, top == journalDir, isLockName(top), p == ManifestFile, p == "current.sql":
		return false
	}
	return true
}

// retainedUntil reports when the Object Lock retention of the object at p
// ends, if it is under retention now (set by object-lock or by the
// bucket's default retention). Stores other than S3 have none.
func (s *blobStore) retainedUntil(p string) (time.Time, bool, error) {
	if !s.s3 {
		return time.Time{}, false, nil
	}
	ctx, cancel := s.op()
	defer cancel()
	a, err := s.b.Attributes(ctx, p)
	if err != nil {
		return time.Time{}, false, s.fail("stat", p, err)
	}
	var head s3.HeadObjectOutput
	if !a.As(&head) || head.ObjectLockRetainUntilDate == nil || !head.ObjectLockRetainUntilDate.After(time.Now()) {
		return time.Time{}, false, nil
	}
	return *head.ObjectLockRetainUntilDate, true, nil
}

// retainer is a Store whose objects may be under retention.
type retainer interface {
	retainedUntil(p string) (time.Time, bool, error)
}

// Retained is an object Prune kept because it is under retention.
type Retained struct {
	Name  string    `json:"name"`
	Until time.Time `json:"until"`
}
