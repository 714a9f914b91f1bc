package redisstore

import (
	"context"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/agora-osb/agora/producers"
)

func TestCanaryResultsAreBounded(t *testing.T) {
	ctx := context.Background()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()
	s := NewCanaryResults(rdb, "t")
	at := time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)
	for i := range canaryHistory + 5 {
		if err := s.Put(ctx, producers.CanaryResult{OfferingID: "off-1", At: at.Add(time.Duration(i) * time.Minute), Passed: i%2 == 0}); err != nil {
			t.Fatal(err)
		}
	}
	h, err := s.History(ctx, "off-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != canaryHistory || !h[0].At.Equal(at.Add(time.Duration(canaryHistory+4)*time.Minute)) {
		t.Fatalf("history of %d, newest %v; want %d, newest first", len(h), h[0].At, canaryHistory)
	}
	latest, err := s.Results(ctx)
	if err != nil || len(latest) != 1 || !latest["off-1"].Passed {
		t.Fatalf("latest %+v %v", latest, err)
	}
	if err := s.Forget(ctx, []string{"off-1"}); err != nil {
		t.Fatal(err)
	}
	if keys := mr.Keys(); len(keys) != 0 {
		t.Errorf("Forget left %v", keys)
	}
}
