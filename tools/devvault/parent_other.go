//go:build !unix

package main

import (
	"context"
	"fmt"
	"os"
	"time"
)

// watchParent calls cancel once process pid can no longer be found.
func watchParent(ctx context.Context, pid int, cancel context.CancelFunc) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		p, err := os.FindProcess(pid)
		if err == nil {
			_ = p.Release()
			continue
		}
		fmt.Fprintf(os.Stderr, "devvault: parent process %d is gone, shutting down\n", pid)
		cancel()
		return
	}
}
