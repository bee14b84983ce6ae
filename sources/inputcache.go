package sources

import "context"

// InputCache tells a source opened for a job with a ledger where it may
// keep, between jobs, what it learned from reading its input, so that a
// later job skips reading what has not changed (the W&B folder source keeps
// each log's identity with its run record and tail: see wandbdir's
// idcache.go). It is carried by the context given to the source's Factory
// (WithInputCache), since a source may start reading from Open.
//
// The contract for a source that keeps such a cache: it trusts an entry
// only while the input it describes provably has not changed since (for
// files: the same device, inode, size, modification and change time), and
// ignores a cache file that is damaged, written by another version or on
// another machine, or for another input; it keeps no secret in it; and
// reading with no cache gives the same result as reading with one, except
// where the source documents that a cheap read cannot tell what an earlier
// full read learnt and kept (wandbdir: the name of a W&B run renamed in the
// middle of a large log, in its light header).
type InputCache struct {
	// Path is the job's ledger file; a source keeps its cache in files
	// named after it (PATH plus a suffix of its own), so that each ledger
	// (each shard's) has its own. "" means no cache: read everything.
	Path string
	// Fresh says not to trust what the cache holds (sync --force,
	// --restart): everything is read again and the cache written anew.
	Fresh bool
}

type inputCacheKey struct{}

// WithInputCache returns ctx carrying c for the sources opened with it.
func WithInputCache(ctx context.Context, c InputCache) context.Context {
	return context.WithValue(ctx, inputCacheKey{}, c)
}

// InputCacheOf returns the InputCache ctx carries; the zero InputCache
// (no cache) when it carries none.
func InputCacheOf(ctx context.Context) InputCache {
	c, _ := ctx.Value(inputCacheKey{}).(InputCache)
	return c
}
