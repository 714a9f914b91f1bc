//go:build !unix

package devvault

import (
	"context"
	"time"
)

// buildLock is a no-op where flock is unavailable: concurrent builds are
// still safe (each renames its own temporary file into place), only wasteful.
func buildLock(ctx context.Context, path string, every time.Duration, waiting func(waited time.Duration)) (unlock func(), err error) {
	return func() {}, ctx.Err()
}
