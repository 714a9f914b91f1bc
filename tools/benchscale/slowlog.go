package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/agora-osb/agora/broker/redisstore"
)

// slowLog is what the slowlog held after the measurements: the longest
// entry, and the longest of the commands whose cost can grow with the
// number of instances.
//
// A command's cost is bounded when Redis flags it "fast" (O(1) or
// O(log N)) or when it reads or writes only one instance's own keys (an
// HGETALL of its bindings, the commit script): those hold that
// instance's records, as many at a million instances as at a thousand.
// One of those in the slowlog (a GET of one small key taking 50 ms) is
// the Redis process waiting for a CPU on this shared machine.
//
// A slow command that spans instances (a ZRANGE of the index) is where
// growth would show, but it stalls like the others. So each such entry
// above slowGoal that only reads is run again, alone, and judged by what
// Redis says the re-runs cost: a ZRANGE logged at 18 ms whose re-runs
// take 40 µs waited for a CPU; one whose re-runs take 18 ms is slow. An
// entry that cannot be re-run (a write, or arguments the slowlog cut
// short) is judged by its logged time.
type slowLog struct {
	any, grows       time.Duration
	anyCmd, growsCmd string
	// overBounded and overGrows count the entries above slowGoal:
	// bounded ones and stalls the re-runs showed, and the others.
	overBounded, overGrows int
	// stall is the longest entry above slowGoal that its re-runs showed
	// to be a stall, with their median cost.
	stall, stallRerun time.Duration
	stallCmd          string
}

// reruns is how many times a slow read is run again; the median of
// their costs is its cost, so one more stall among them changes nothing.
const reruns = 5

// maxRerun bounds the distinct slow reads re-run per Redis.
const maxRerun = 20

func slowest(ctx context.Context, rdb *redis.Client) (slowLog, error) {
	store := redisstore.New(rdb, keyPrefix)
	queue := redisstore.NewQueue(rdb, redisstore.QueueOptions{Prefix: keyPrefix})
	sl := slowLog{anyCmd: "none over 1 ms", growsCmd: "none over 1 ms"}
	logs, err := rdb.SlowLogGet(ctx, -1).Result()
	if err != nil {
		return sl, err
	}
	commands, err := rdb.Command(ctx).Result()
	if err != nil {
		return sl, err
	}
	// Longest first, so the re-runs go to the entries that decide.
	slices.SortFunc(logs, func(a, b redis.SlowLog) int { return cmp.Compare(b.Duration, a.Duration) })
	rerun := map[string]time.Duration{} // command as logged -> its re-runs' median
	for _, l := range logs {
		if len(l.Args) == 0 {
			continue
		}
		name := strings.ToLower(l.Args[0])
		if name == "slowlog" {
			// The tool's own SLOWLOG RESET, which frees the seeding's
			// entries: not a request path.
			continue
		}
		info := commands[name]
		bounded := info != nil && slices.Contains(info.Flags, "fast") || boundedKeys(store, queue, name, l.Args)
		what := shortCommand(l.Args)
		if l.Duration > sl.any {
			sl.any, sl.anyCmd = l.Duration, what
		}
		if !bounded && l.Duration > slowGoal && rereadable(info, l.Args) {
			key := strings.Join(l.Args, "\x00")
			cost, seen := rerun[key]
			if !seen && len(rerun) < maxRerun {
				if cost, err = rerunCost(ctx, rdb, l.Args); err != nil {
					return sl, fmt.Errorf("re-running %s: %w", what, err)
				}
				rerun[key], seen = cost, true
			}
			if seen && cost <= slowGoal {
				bounded = true
				if l.Duration > sl.stall {
					sl.stall, sl.stallRerun, sl.stallCmd = l.Duration, cost, what
				}
			}
		}
		if !bounded && l.Duration > sl.grows {
			sl.grows, sl.growsCmd = l.Duration, what
		}
		switch {
		case l.Duration <= slowGoal:
		case bounded:
			sl.overBounded++
		default:
			sl.overGrows++
		}
	}
	return sl, nil
}

// shortCommand is a slowlog entry's command and first two arguments, for
// the report.
func shortCommand(args []string) string {
	if len(args) > 3 {
		args = append(args[:3:3], "...")
	}
	return strings.Join(args, " ")
}

// cutShort matches what the slowlog puts in place of the arguments or
// bytes it did not keep.
var cutShort = regexp.MustCompile(`\.\.\. \(\d+ more (bytes|arguments)\)$`)

// rereadable reports whether a slowlog entry can be run again as logged:
// a command that only reads, with every argument intact.
func rereadable(info *redis.CommandInfo, args []string) bool {
	if info == nil || !slices.Contains(info.Flags, "readonly") || slices.Contains(info.Flags, "blocking") {
		return false
	}
	for _, a := range args {
		if cutShort.MatchString(a) {
			return false
		}
	}
	return true
}

// rerunCost runs a read from the slowlog again, reruns times, and
// returns the median of Redis's own timings of those runs (the slowlog's,
// its threshold at 0 meanwhile). It runs after the measurements, so the
// re-runs have the Redis to themselves but for Agora's idle workers.
func rerunCost(ctx context.Context, rdb *redis.Client, args []string) (time.Duration, error) {
	const threshold = "slowlog-log-slower-than"
	was, err := rdb.ConfigGet(ctx, threshold).Result()
	if err != nil {
		return 0, err
	}
	if err := rdb.ConfigSet(ctx, threshold, "0").Err(); err != nil {
		return 0, err
	}
	defer func() { _ = rdb.ConfigSet(context.WithoutCancel(ctx), threshold, was[threshold]).Err() }()
	if err := rdb.SlowLogReset(ctx).Err(); err != nil {
		return 0, err
	}
	cmd := make([]any, len(args))
	for i, a := range args {
		cmd[i] = a
	}
	for range reruns {
		if err := rdb.Do(ctx, cmd...).Err(); err != nil && !errors.Is(err, redis.Nil) {
			return 0, err
		}
	}
	logs, err := rdb.SlowLogGet(ctx, -1).Result()
	if err != nil {
		return 0, err
	}
	var took []time.Duration
	for _, l := range logs {
		if slices.Equal(l.Args, args) {
			took = append(took, l.Duration)
		}
	}
	if len(took) != reruns {
		return 0, fmt.Errorf("the slowlog holds %d of its %d re-runs", len(took), reruns)
	}
	slices.Sort(took)
	return took[len(took)/2], nil
}

// boundedKeys reports whether a slowlog entry's keys (the first
// argument of a one-key command, what the measured paths send besides
// scripts; the KEYS of a script) all hold what does not grow with the
// number of instances: one instance's own keys, the job queue's (whose
// promote script, run by the idle workers, was logged at 13 ms with
// 1,000 instances and at 5 ms with a million).
func boundedKeys(store *redisstore.Store, queue *redisstore.Queue, name string, args []string) bool {
	var keys []string
	switch name {
	case "evalsha", "eval", "evalsha_ro", "eval_ro":
		if len(args) < 3 {
			return false
		}
		n, err := strconv.Atoi(args[2])
		if err != nil || n < 1 || len(args) < 3+n {
			return false
		}
		keys = args[3 : 3+n]
	case "get", "hgetall", "hget", "set", "hset":
		if len(args) < 2 {
			return false
		}
		keys = args[1:2]
	default:
		return false
	}
	for _, k := range keys {
		if !store.IsInstanceKey(k) && !queue.IsJobKey(k) {
			return false
		}
	}
	return true
}
