package main

import (
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/agora-osb/agora/broker/redisstore"
)

// A slowlog entry counts as a stall only when its keys are all one
// instance's own or the job queue's; anything spanning instances is where
// growth shows.
func TestBoundedKeys(t *testing.T) {
	store := redisstore.New(nil, keyPrefix)
	queue := redisstore.NewQueue(nil, redisstore.QueueOptions{Prefix: keyPrefix})
	for _, c := range []struct {
		args []string
		want bool
	}{
		{[]string{"hgetall", "agora-scale:{i-1}:bindings"}, true},
		{[]string{"get", "agora-scale:{i-1}:status"}, true},
		{[]string{"evalsha", "abc", "2", "agora-scale:{i-1}:instance", "agora-scale:{i-1}:ops", "arg"}, true},
		{[]string{"evalsha", "abc", "2", "agora-scale:{i-1}:instance", "agora-scale:{jobs}:stream"}, true},
		{[]string{"evalsha", "abc", "2", "agora-scale:{jobs}:delayed", "agora-scale:{jobs}:stream", "1764950000000", "100"}, true},
		{[]string{"evalsha", "abc", "2", "agora-scale:{jobs}:stream", "agora-scale:offering:{svc}:by-creation"}, false},
		{[]string{"get", "agora-scale:{jobs}:other"}, false},
		{[]string{"evalsha", "abc", "3", "agora-scale:{i-1}:instance"}, false}, // keys cut off by the slowlog
		{[]string{"zrange", "agora-scale:offering:{svc}:by-creation", "-", "+"}, false},
		{[]string{"hgetall", "agora-scale:{expiries}:bindings"}, false},
		{[]string{"del", "agora-scale:{i-1}:lock", "agora-scale:counts"}, false},
		{[]string{"hgetall"}, false},
	} {
		if got := boundedKeys(store, queue, c.args[0], c.args); got != c.want {
			t.Errorf("%v: %v, want %v", c.args, got, c.want)
		}
	}
}

// A slow read that spans instances is judged by what its re-runs cost:
// one that was slow only once (it waited for a CPU) is a stall, one
// that is slow each time is not.
func TestSlowReadsAreJudgedByTheirReruns(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a redis-server")
	}
	ctx := t.Context()
	addr, cmd, err := startRedis(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { killAndWait(cmd) })
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { _ = rdb.Close() })

	// A read that busies Redis for tens of ms while its flag says
	// "slow": a stall is a run that was slow once, then not.
	const script = `if redis.call('get', KEYS[1]) == 'slow' then local i = 0 while i < 3e6 do i = i + 1 end end return 1`
	stalled, slow := keyPrefix+":stalled", keyPrefix+":slow"
	for _, c := range [][]any{
		{"config", "set", "slowlog-log-slower-than", "1000"},
		{"mset", stalled, "slow", slow, "slow"},
		{"slowlog", "reset"},
		{"eval_ro", script, "1", stalled},
		{"eval_ro", script, "1", slow},
		{"set", stalled, "quick"},
	} {
		if err := rdb.Do(ctx, c...).Err(); err != nil {
			t.Fatalf("%v: %v", c[:2], err)
		}
	}

	sl, err := slowest(ctx, rdb)
	if err != nil {
		t.Fatal(err)
	}
	if sl.overGrows != 1 || sl.grows <= slowGoal {
		t.Errorf("the read slow on every run: %d judged slow, the longest %s; want 1, over %s", sl.overGrows, sl.grows, slowGoal)
	}
	if sl.overBounded != 1 || sl.stall <= slowGoal || sl.stallRerun > slowGoal {
		t.Errorf("the read slow once: %d stalls, the longest %s re-run in %s; want 1, over %s, re-run under it", sl.overBounded, sl.stall, sl.stallRerun, slowGoal)
	}
	if got, err := rdb.ConfigGet(ctx, "slowlog-log-slower-than").Result(); err != nil || got["slowlog-log-slower-than"] != "1000" {
		t.Errorf("the slowlog's threshold after the re-runs: %v (%v), want 1000 as before", got, err)
	}
}

func TestRereadableNeedsAReadWithEveryArgument(t *testing.T) {
	read := &redis.CommandInfo{Flags: []string{"readonly"}}
	write := &redis.CommandInfo{Flags: []string{"write"}}
	for _, c := range []struct {
		info *redis.CommandInfo
		args []string
		want bool
	}{
		{read, []string{"zrange", "k", "-", "+", "BYLEX", "LIMIT", "0", "250"}, true},
		{write, []string{"zadd", "k", "0", "m"}, false},
		{nil, []string{"unknown"}, false},
		{read, []string{"zrange", "k", "(" + "x... (12 more bytes)", "+"}, false},
		{read, []string{"mget", "a", "... (40 more arguments)"}, false},
	} {
		if got := rereadable(c.info, c.args); got != c.want {
			t.Errorf("%v: %v, want %v", c.args, got, c.want)
		}
	}
}
