// Command bench measures Agora against floors taken in the same run on the
// same machine, and prints three ratios (see the README, "Benchmarks"):
//
//  1. catalog: GET /v2/catalog requests/s, Agora against a minimal
//     net/http server that serves the same precomputed catalog bytes
//     behind the same basic auth (goal >= 1.0);
//  2. last_operation: requests/s, Agora against a minimal net/http server
//     doing the same basic auth, one Redis GET of the same status key and
//     a small JSON answer, at the same concurrency against the same Redis
//     (goal >= 0.95);
//  3. bind: p50 latency of PUT bind through Agora against the same backend
//     calls made directly: the secrets adapter's Bind, the Vault put and
//     the same Redis reads and writes (goal <= 1.10). A round times its
//     binds in pairs, one of each side, who goes first alternating.
//
// Throughput is judged in requests per CPU-second of this process (load
// generator, both servers, the Redis client; getrusage around each side
// of a round), with wall-clock requests/s printed beside (-wall judges by
// those): on a machine others load, wall time measures who got a core.
//
// Both sides of a comparison are served over loopback HTTP by this
// process and driven by the same client. Each round measures Agora and
// its floor back to back, in alternating slices (-slices; who goes first
// alternates), and the reported value is the median of the per-round
// ratios: on a shared, noisy machine many short paired rounds cancel the
// load of others, which hits both sides of a round alike. Each ratio ends
// in one line scripts can read:
//
//	ratio <name> <value> goal <op> <number> <met|NOT MET>
//
// where the verdict judges the value as printed (two decimals).
//
// Flags worth knowing: -cpuprofile=DIR writes a CPU profile of Agora under
// each load (DIR/catalog.pprof, last_operation.pprof, bind.pprof; one
// longer extra round each, outside the measured ones) and one of its
// floor beside it (catalog-floor.pprof, ...), -chain serves
// polls through brokerapi instead of the fast path, -only picks
// comparisons, -observer=off measures Agora without its metrics Observer
// and Redis hook, -redis-protocol=3
// has Agora's Redis client speak RESP3 (go-redis's default) instead of the
// RESP2 Agora runs with (the floor's stays at go-redis's default), -aa
// measures the floor against a twin of itself after each throughput
// comparison (an A/A run: the bench's own noise), and
// -roundtrips prints the Redis round
// trips of each OSB operation.
//
// It needs the real Redis at 127.0.0.1:6379 (REDIS_URL overrides) and
// builds or reuses the dev Vault. Its keys carry a per-run prefix and are
// removed at the end.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

type options struct {
	rounds      int
	duration    time.Duration
	concurrency int
	binds       int
	profileDir  string
	observer    bool
	protocol    int
	roundTrips  bool
	only        map[string]bool // empty: every comparison
	chain       bool            // polls through brokerapi, not the fast path
	wall        bool            // judge throughput by wall-clock req/s
	aa          bool            // also measure the floor against a copy of itself
	slices      int             // alternating slices of each side per throughput round
}

// runs reports whether the comparison name is to be run.
func (o options) runs(name string) bool { return len(o.only) == 0 || o.only[name] }

func main() {
	var o options
	flag.IntVar(&o.rounds, "rounds", 161, "alternating rounds per comparison (the median of the per-round ratios is reported; on a 2-core machine 41 moved it by about 1% run to run, 81 by about half a percent, as much as the catalog's distance from its floor)")
	flag.DurationVar(&o.duration, "duration", 250*time.Millisecond, "length of one side of a throughput round")
	flag.IntVar(&o.concurrency, "c", 16, "concurrent clients for the throughput comparisons")
	flag.IntVar(&o.slices, "slices", 5, "slices of each side in one throughput round, alternating (each -duration/slices long); 5 halved the per-round ratios' spread of 1 on a 2-core machine")
	flag.IntVar(&o.binds, "binds", 40, "binds per round for the latency comparison")
	flag.StringVar(&o.profileDir, "cpuprofile", "", "directory to write CPU profiles of Agora under each load into (catalog.pprof, last_operation.pprof, bind.pprof) and of its floor under the same load (catalog-floor.pprof, ...)")
	observer := flag.String("observer", "on", "on: Agora runs with its metrics Observer and Redis hook, as deployed; off: without them")
	flag.IntVar(&o.protocol, "redis-protocol", 2, "RESP version Agora's Redis client speaks: 2 (as Agora runs, redis.protocol) or 3 (go-redis's default); the floor's client stays at go-redis's default")
	flag.BoolVar(&o.roundTrips, "roundtrips", false, "also count the Redis round trips of each OSB operation")
	flag.BoolVar(&o.wall, "wall", false, "judge throughput by wall-clock requests/s rather than requests per CPU-second of this process (both are printed)")
	flag.BoolVar(&o.aa, "aa", false, "after each throughput comparison, measure the floor against a second copy of itself the same way (an A/A run): how far from 1.00 the bench's own noise puts a ratio")
	flag.BoolVar(&o.chain, "chain", false, "serve Agora's polls through brokerapi (the middleware chain) instead of the fast path, to compare the two")
	only := flag.String("only", "", "comma-separated comparisons to run (catalog, last_operation, bind); empty: all three")
	flag.Parse()
	if *only != "" {
		o.only = map[string]bool{}
		for _, name := range strings.Split(*only, ",") {
			if name != "catalog" && name != "last_operation" && name != "bind" {
				fmt.Fprintf(os.Stderr, "bench: -only names catalog, last_operation or bind, not %q\n", name)
				os.Exit(2)
			}
			o.only[name] = true
		}
	}
	switch *observer {
	case "on":
		o.observer = true
	case "off":
	default:
		fmt.Fprintf(os.Stderr, "bench: -observer must be on or off, not %q\n", *observer)
		os.Exit(2)
	}
	if o.protocol != 2 && o.protocol != 3 {
		fmt.Fprintf(os.Stderr, "bench: -redis-protocol must be 2 or 3, not %d\n", o.protocol)
		os.Exit(2)
	}
	if o.rounds < 1 || o.concurrency < 1 || o.binds < 1 || o.slices < 1 || o.duration <= 0 {
		fmt.Fprintln(os.Stderr, "bench: -rounds, -c, -binds, -slices and -duration must be positive")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

const (
	user, pass = "bench", "bench-password"
	apiVersion = "2.15"
)

func run(ctx context.Context, o options) error {
	if o.profileDir != "" {
		if err := os.MkdirAll(o.profileDir, 0o755); err != nil {
			return err
		}
	}
	env, err := setUp(ctx, o)
	if err != nil {
		return err
	}
	defer env.close()
	observer := "on"
	if !o.observer {
		observer = "off"
	}
	fmt.Printf("bench: %d rounds, %s per side of a throughput round in %d alternating slices, concurrency %d, %d binds per round, observer %s, RESP%d\n\n",
		o.rounds, o.duration, o.slices, o.concurrency, o.binds, observer, o.protocol)

	var ratios, selfChecks []result
	// selfCheck is the A/A run of a throughput comparison (-aa): the
	// floor's twin in Agora's place, everything else alike.
	selfCheck := func(name, path string) {
		if !o.aa {
			return
		}
		fmt.Printf("%s, A/A: the floor's twin in Agora's place\n", name)
		selfChecks = append(selfChecks, compareThroughput(ctx, o, name, func(c *http.Client) error { return get(c, env.twinURL+path) },
			func(c *http.Client) error { return get(c, env.floorURL+path) }, 1.0))
	}
	if o.runs("catalog") {
		catalog := func(c *http.Client) error { return get(c, env.agoraURL+"/v2/catalog") }
		floorCatalog := func(c *http.Client) error { return get(c, env.floorURL+"/v2/catalog") }
		fmt.Printf("catalog: GET /v2/catalog req/s (%d bytes), Agora vs a net/http server with the same bytes and basic auth\n", len(env.cat.JSON()))
		ratios = append(ratios, compareThroughput(ctx, o, "catalog", catalog, floorCatalog, 1.0))
		selfCheck("catalog", "/v2/catalog")
		if err := profilePair(ctx, o, "catalog", func(p options) { throughput(ctx, p, catalog) }, func(p options) { throughput(ctx, p, floorCatalog) }); err != nil {
			return err
		}
	}

	if o.runs("last_operation") {
		iid, opID, err := env.asyncInstance(ctx)
		if err != nil {
			return err
		}
		query := fmt.Sprintf("/v2/service_instances/%s/last_operation?operation=%s", iid, opID)
		poll := func(c *http.Client) error { return get(c, env.agoraURL+query) }
		floorPoll := func(c *http.Client) error { return get(c, env.floorURL+query) }
		fmt.Printf("last_operation: req/s, Agora vs a net/http server doing basic auth, one Redis GET of the same key and a small JSON answer\n")
		ratios = append(ratios, compareThroughput(ctx, o, "last_operation", poll, floorPoll, 0.95))
		selfCheck("last_operation", query)
		if err := profilePair(ctx, o, "last_operation", func(p options) { throughput(ctx, p, poll) }, func(p options) { throughput(ctx, p, floorPoll) }); err != nil {
			return err
		}
	}

	if o.runs("bind") {
		fmt.Printf("bind: p50 ms of %d sequential binds, Agora's PUT bind vs the adapter bind + Vault put + the same Redis writes\n", o.binds)
		bind, err := env.compareBind(ctx, o)
		if err != nil {
			return err
		}
		ratios = append(ratios, bind)
		if err := profilePair(ctx, o, "bind", func(p options) { _, _ = env.bindRound(ctx, p.binds, env.viaAgora) },
			func(p options) { _, _ = env.bindRound(ctx, p.binds, env.viaBackends) }); err != nil {
			return err
		}
	}

	if o.roundTrips {
		if err := env.printRoundTrips(ctx); err != nil {
			return err
		}
	}
	for _, r := range selfChecks {
		fmt.Printf("a/a %s %.3f: the floor against its twin; a ratio this far from 1.00 is the bench's own noise\n", r.name, r.ratio)
	}
	// The ratio lines come once each, last, for scripts.
	fmt.Println("summary:")
	for _, r := range ratios {
		fmt.Println(r.line())
	}
	return nil
}

// result is one comparison's outcome: the median of per-round ratios of
// Agora to its floor.
type result struct {
	name         string
	ratio        float64
	goal         float64
	higherBetter bool
}

// line is the one line scripts read. The verdict judges the value as
// printed, so the line never contradicts itself.
func (r result) line() string {
	shown := fmt.Sprintf("%.2f", r.ratio)
	var rounded float64
	_, _ = fmt.Sscanf(shown, "%g", &rounded)
	op, met := "<=", rounded <= r.goal
	if r.higherBetter {
		op, met = ">=", rounded >= r.goal
	}
	verdict := "met"
	if !met {
		verdict = "NOT MET"
	}
	return fmt.Sprintf("ratio %s %s goal %s %s %s", r.name, shown, op, strings.TrimSuffix(fmt.Sprintf("%.2f", r.goal), "0"), verdict)
}

// compareThroughput alternates rounds of Agora and its floor after a short
// warm-up of each, printing each round as it ends.
func compareThroughput(ctx context.Context, o options, name string, agora, floor func(*http.Client) error, goal float64) result {
	agoraClient, floorClient := newClient(o.concurrency), newClient(o.concurrency)
	defer agoraClient.CloseIdleConnections()
	defer floorClient.CloseIdleConnections()
	throughputWith(ctx, o, o.duration, agoraClient, agora) // warm-up: connections, caches
	throughputWith(ctx, o, o.duration, floorClient, floor)
	slice := o.duration / time.Duration(o.slices)
	var perCPU, perWall []float64
	for i := range o.rounds {
		// A round is o.slices slices of each side, alternating, and who
		// goes first alternates from round to round, so a change in the
		// machine's load within a round hits both sides alike.
		var a, f tally
		for s := range o.slices {
			if (i+s)%2 == 0 {
				a.add(throughputWith(ctx, o, slice, agoraClient, agora))
				f.add(throughputWith(ctx, o, slice, floorClient, floor))
			} else {
				f.add(throughputWith(ctx, o, slice, floorClient, floor))
				a.add(throughputWith(ctx, o, slice, agoraClient, agora))
			}
		}
		perCPU, perWall = append(perCPU, a.perCPUSecond()/f.perCPUSecond()), append(perWall, a.perSecond()/f.perSecond())
		fmt.Printf("  round %2d/%d: Agora %6.0f req/s %6.0f req/CPU-s  floor %6.0f req/s %6.0f req/CPU-s  ratio %.3f (wall %.3f)\n",
			i+1, o.rounds, a.perSecond(), a.perCPUSecond(), f.perSecond(), f.perCPUSecond(), perCPU[i], perWall[i])
	}
	ratios, other, otherName := perCPU, perWall, "wall-clock req/s"
	if o.wall {
		ratios, other, otherName = perWall, perCPU, "req per CPU-second"
	}
	r := result{name: name, ratio: median(ratios), goal: goal, higherBetter: true}
	fmt.Printf("  median of the per-round ratios %.3f, spread %.3f-%.3f (of %s: median %.3f, spread %.3f-%.3f)\n\n",
		r.ratio, slices.Min(ratios), slices.Max(ratios), otherName, median(other), slices.Min(other), slices.Max(other))
	return r
}

// profilePair runs each load once more, for longer, with the CPU profiler
// on, when -cpuprofile asked for it: Agora's into DIR/<name>.pprof and
// its floor's into DIR/<name>-floor.pprof, so that
// go tool pprof -diff_base shows where Agora spends what the floor does
// not. A profile covers the whole process, the load generator included:
// look for Agora's frames (broker/httpapi, broker, redisstore) under
// net/http's serve.
func profilePair(ctx context.Context, o options, name string, agora, floor func(options)) error {
	if o.profileDir == "" {
		return nil
	}
	// Long enough for a few thousand samples even on a loaded machine.
	p := o
	p.duration = max(20*o.duration, 5*time.Second)
	p.binds = 20 * o.binds
	agoraPath, floorPath := filepath.Join(o.profileDir, name+".pprof"), filepath.Join(o.profileDir, name+"-floor.pprof")
	if err := profile(ctx, agoraPath, func() { agora(p) }); err != nil {
		return err
	}
	if err := profile(ctx, floorPath, func() { floor(p) }); err != nil {
		return err
	}
	fmt.Printf("  CPU profiles under the %s load: Agora %s, its floor %s\n  (go tool pprof -top %s; Agora's extra: go tool pprof -top -diff_base %s %s)\n\n",
		name, agoraPath, floorPath, agoraPath, floorPath, agoraPath)
	return nil
}

// profile writes a CPU profile of the process while load runs to path.
func profile(ctx context.Context, path string, load func()) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := pprof.StartCPUProfile(f); err != nil {
		return err
	}
	load()
	pprof.StopCPUProfile()
	return ctx.Err()
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func newClient(conc int) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = conc * 2
	tr.MaxConnsPerHost = conc * 2
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

func get(c *http.Client, url string) error {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.SetBasicAuth(user, pass)
	req.Header.Set("X-Broker-API-Version", apiVersion)
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

// throughput runs fn from o.concurrency goroutines for o.duration and
// returns what they completed. Failed calls are not counted, and
// reported, so a broken side cannot look fast. Its client's connections
// are closed when it ends: left idle, they stayed open on the server
// through the comparisons that followed.
func throughput(ctx context.Context, o options, fn func(*http.Client) error) tally {
	client := newClient(o.concurrency)
	defer client.CloseIdleConnections()
	return throughputWith(ctx, o, o.duration, client, fn)
}

// throughputWith is throughput for d on a client whose connections
// persist across rounds, so no round pays for dialling.
func throughputWith(ctx context.Context, o options, d time.Duration, client *http.Client, fn func(*http.Client) error) tally {
	var n, failed atomic.Int64
	var firstErr atomic.Value
	cpu := processCPU()
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for range o.concurrency {
		wg.Go(func() {
			for time.Now().Before(deadline) && ctx.Err() == nil {
				if err := fn(client); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
					continue
				}
				n.Add(1)
			}
		})
	}
	wg.Wait()
	cpu = processCPU() - cpu
	if f := failed.Load(); f > 0 {
		fmt.Fprintf(os.Stderr, "bench: %d failed calls, the first: %v\n", f, firstErr.Load())
	}
	return tally{calls: n.Load(), wall: d, cpu: cpu}
}

// tally is what one side served: calls completed, the wall time given
// to it, and the CPU time this process (load generator, server, Redis
// client) used meanwhile. On a machine others load, CPU time counts only
// the work done, not the waiting for a core.
type tally struct {
	calls     int64
	wall, cpu time.Duration
}

func (t *tally) add(u tally) {
	t.calls += u.calls
	t.wall += u.wall
	t.cpu += u.cpu
}

func (t tally) perSecond() float64 { return float64(t.calls) / t.wall.Seconds() }

func (t tally) perCPUSecond() float64 {
	return float64(t.calls) / max(t.cpu.Seconds(), 1e-6)
}

// processCPU is the user and system CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
