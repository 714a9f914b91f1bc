//go:build unix

package devvault

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// buildLock takes an exclusive flock on path, polling until ctx is done.
// While another process holds it, waiting is called at once and then
// every interval with how long this process has waited, so a developer
// never stares at a silent terminal for minutes. The kernel releases the
// lock if its holder dies.
func buildLock(ctx context.Context, path string, every time.Duration, waiting func(waited time.Duration)) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("devvault: build lock: %w", err)
	}
	var start, announced time.Time
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() {
				_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
				f.Close()
			}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("devvault: build lock %s: %w", path, err)
		}
		now := time.Now()
		if start.IsZero() {
			start = now
		}
		if announced.IsZero() || now.Sub(announced) >= every {
			announced = now
			waiting(now.Sub(start))
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(min(every, 500*time.Millisecond)):
		}
	}
}
