package mlflow

// SetLogSegmentBytes sets the size at which console segments are closed
// until the returned function puts it back (tests only; not in parallel).
func SetLogSegmentBytes(n int64) (restore func()) {
	was := logSegmentBytes
	logSegmentBytes = n
	return func() { logSegmentBytes = was }
}
