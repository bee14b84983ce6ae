package main

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/runferry/runferry/engine/transfer"
)

// parseShardFlag reads --shard: "" (no sharding), "K/N", or "auto" (from
// the batch system's variables, transfer.ShardFromEnv). Bad values are
// usage errors.
func parseShardFlag(v string) (transfer.Shard, error) {
	var (
		s   transfer.Shard
		err error
	)
	switch v {
	case "":
		return s, nil
	case "auto":
		s, err = transfer.ShardFromEnv(os.Getenv)
	default:
		s, err = transfer.ParseShard(v)
	}
	if err != nil {
		return s, usageError{err}
	}
	return s, nil
}

// shardStatePath names the ledger file by the shard, so that shards
// running side by side on one machine or on one shared volume each keep
// their own file: ledger.db becomes ledger.shard-2-of-4.db.
func shardStatePath(p string, s transfer.Shard) string {
	if s.IsZero() {
		return p
	}
	ext := filepath.Ext(p)
	return strings.TrimSuffix(p, ext) + ".shard-" + strings.ReplaceAll(s.String(), "/", "-of-") + ext
}
