//go:build unix

package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// watchParent calls cancel once process pid no longer exists (or, if pid was
// our parent, once we have been re-parented, which also covers a parent that
// died but has not been reaped yet).
func watchParent(ctx context.Context, pid int, cancel context.CancelFunc) {
	wasParent := os.Getppid() == pid
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		gone := wasParent && os.Getppid() != pid
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			gone = true
		}
		if gone {
			fmt.Fprintf(os.Stderr, "devvault: parent process %d is gone, shutting down\n", pid)
			cancel()
			return
		}
	}
}
