//go:build unix

package devvault

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// TestBuildLockKeepsSayingItWaits: while another holder keeps the lock, a
// waiter reports at once and then again and again with how long it has
// waited, and gets the lock when the holder lets go.
func TestBuildLockKeepsSayingItWaits(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vault.lock")
	unlock, err := buildLock(t.Context(), path, time.Hour, func(time.Duration) { t.Error("the first taker waited") })
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var waits []time.Duration
	got := make(chan error, 1)
	go func() {
		release, err := buildLock(context.Background(), path, 20*time.Millisecond, func(waited time.Duration) {
			mu.Lock()
			waits = append(waits, waited)
			mu.Unlock()
		})
		if err == nil {
			release()
		}
		got <- err
	}()
	deadline := time.Now().Add(time.Minute)
	for {
		mu.Lock()
		n := len(waits)
		mu.Unlock()
		if n >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the waiter reported %d times in a minute", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	unlock()
	if err := <-got; err != nil {
		t.Fatalf("the waiter did not get the lock: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if waits[0] != 0 || waits[len(waits)-1] <= waits[0] {
		t.Errorf("waits %v: want the first at 0 and later ones growing", waits)
	}
}
