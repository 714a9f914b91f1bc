package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// goal is the largest 1M/1k ratio that counts as flat.
const goal = 1.1

// slowGoal is the longest single Redis command allowed while measuring.
const slowGoal = 10 * time.Millisecond

func run(ctx context.Context, o options) error {
	sh, err := setUpShared(ctx)
	defer sh.close()
	if err != nil {
		return err
	}
	envs := make([]*env, 2)
	for i, size := range o.sizes {
		addr := ""
		if o.redisAddrs != nil {
			addr = o.redisAddrs[i]
		}
		e, err := setUpEnv(ctx, sh, size, addr)
		defer e.close()
		if err != nil {
			return fmt.Errorf("set up %s: %w", e.name, err)
		}
		envs[i] = e
	}
	seeding := make([]time.Duration, 2)
	for i, e := range envs {
		fmt.Printf("seeding %d instances, each with a binding, into the %s Redis\n", e.size, e.name)
		if seeding[i], err = seed(ctx, e); err != nil {
			return err
		}
		fmt.Printf("seeded %s in %s (%.0f instances/s)\n\n", e.name, seeding[i].Round(time.Millisecond), float64(e.size)/seeding[i].Seconds())
	}
	// The slowlog and the command statistics from here on are the
	// measured paths' own.
	for _, e := range envs {
		if err := e.rdb.SlowLogReset(ctx).Err(); err != nil {
			return err
		}
		if err := e.rdb.ConfigResetStat(ctx).Err(); err != nil {
			return err
		}
	}

	paths := []path{
		{name: "catalog", n: o.samples, do: func(ctx context.Context, e *env, _ int, _ *state) error {
			_, err := e.get(ctx, "/v2/catalog", "")
			return err
		}},
		{name: "last_operation", n: o.samples, do: func(ctx context.Context, e *env, _ int, _ *state) error {
			_, err := e.get(ctx, "/v2/service_instances/"+seedID(rand.IntN(e.size))+"/last_operation", "")
			return err
		}},
		{name: "get_instance", n: o.samples, do: func(ctx context.Context, e *env, _ int, _ *state) error {
			_, err := e.get(ctx, "/v2/service_instances/"+seedID(rand.IntN(e.size)), "")
			return err
		}},
		{name: "provision", n: o.vaultSamples, do: func(ctx context.Context, e *env, i int, st *state) error {
			iid := fmt.Sprintf("m-%s-%d-%d", e.name, st.round, i)
			st.ids = append(st.ids, iid)
			return e.provision(ctx, iid, e.secretsService, e.secretsPlan)
		}},
		{name: "bind", n: o.vaultSamples, do: func(ctx context.Context, e *env, i int, st *state) error {
			return e.send(ctx, http.MethodPut, "/v2/service_instances/"+st.ids[i]+"/service_bindings/"+st.ids[i]+"-b", map[string]any{
				"service_id": e.secretsService, "plan_id": e.secretsPlan, "app_guid": "bench-app",
			}, http.StatusCreated)
		}},
		{name: "deprovision_secrets", n: o.vaultSamples, do: func(ctx context.Context, e *env, i int, st *state) error {
			// With its binding: the cascade unbinds it first, as for a
			// client that deletes without unbinding.
			return e.send(ctx, http.MethodDelete, "/v2/service_instances/"+st.ids[i]+"?service_id="+e.secretsService+"&plan_id="+e.secretsPlan, nil, http.StatusOK)
		}},
		{name: "deprovision_postgres", n: o.vaultSamples, prepare: func(ctx context.Context, e *env, i int, st *state) error {
			iid := fmt.Sprintf("pg-%s-%d-%d", e.name, st.round, i)
			st.pg = append(st.pg, iid)
			return e.provision(ctx, iid, e.postgresService, e.postgresPlan)
		}, do: func(ctx context.Context, e *env, i int, st *state) error {
			return e.send(ctx, http.MethodDelete, "/v2/service_instances/"+st.pg[i]+"?service_id="+e.postgresService+"&plan_id="+e.postgresPlan, nil, http.StatusOK)
		}},
		{name: "producer_listing_first_page", n: o.samples, do: func(ctx context.Context, e *env, _ int, _ *state) error {
			page, err := e.instancePage(ctx, "/producers/"+producerName+"/instances?limit=100", e.prodToken)
			if err == nil && len(page.Instances) == 0 {
				err = errors.New("the first page is empty")
			}
			return err
		}},
		{name: "admin_listing_first_page", n: o.samples, do: func(ctx context.Context, e *env, _ int, _ *state) error {
			page, err := e.instancePage(ctx, "/admin/instances?limit=100", "")
			if err == nil && len(page.Instances) == 0 {
				err = errors.New("the first page is empty")
			}
			return err
		}},
	}

	results := map[string]*[2][]time.Duration{}
	for _, p := range paths {
		results[p.name] = &[2][]time.Duration{}
	}
	fmt.Printf("load average before measuring: %s\n", loadAverage())
	fmt.Printf("measuring: %d rounds, sizes alternating request by request, %d requests per round and size for the cheap paths, %d for those calling Vault or PostgreSQL\n", o.rounds, o.samples, o.vaultSamples)
	for round := range o.rounds {
		states := [2]*state{{round: round}, {round: round}}
		for _, p := range paths {
			lat, err := p.measure(ctx, envs, states, round)
			if err != nil {
				return fmt.Errorf("%s: %w", p.name, err)
			}
			for i := range lat {
				results[p.name][i] = append(results[p.name][i], lat[i]...)
			}
		}
		fmt.Printf("  round %d of %d done\n", round+1, o.rounds)
	}

	// The full walks go page by page, alternating sizes like the other
	// paths: the small listing is walked again and again while the big one
	// is walked once, so both are timed over the same minutes.
	fmt.Println("\nfull walks of the producer's listing (pages of 1000), alternating page by page")
	walks, err := walkBoth(ctx, envs)
	if err != nil {
		return err
	}
	walkUS := [2]float64{}
	for i, w := range walks {
		walkUS[i] = perInstance(w.took, w.instances)
		fmt.Printf("  %s: %d complete walks, %d instances in %s: %.1f µs per instance\n", envs[i].name, w.walks, w.instances, w.took.Round(time.Millisecond), walkUS[i])
	}
	fmt.Printf("\n%-30s %12s %12s %12s %12s\n", "path (ms)", "p50 "+envs[0].name, "p99 "+envs[0].name, "p50 "+envs[1].name, "p99 "+envs[1].name)
	for _, p := range paths {
		r := results[p.name]
		fmt.Printf("%-30s %12.3f %12.3f %12.3f %12.3f\n", p.name, ms(pct(r[0], 50)), ms(pct(r[0], 99)), ms(pct(r[1], 50)), ms(pct(r[1], 99)))
	}
	fmt.Println()
	for _, p := range paths {
		r := results[p.name]
		printRatio(p.name, float64(pct(r[1], 50))/float64(pct(r[0], 50)))
	}
	printRatio("producer_listing_full_walk_per_instance", walkUS[1]/walkUS[0])

	fmt.Println()
	for i, e := range envs {
		rss, peak := rssKiB(e.agora.Process.Pid)
		fmt.Printf("agora RSS %s: %.1f MiB (peak %.1f MiB)\n", e.name, float64(rss)/1024, float64(peak)/1024)
		mem, _ := e.rdb.Info(ctx, "memory").Result()
		fmt.Printf("redis used_memory %s: %s\n", e.name, infoField(mem, "used_memory_human"))
		fmt.Printf("seeding %s: %s\n", e.name, seeding[i].Round(time.Millisecond))
	}
	if err := printCommandStats(ctx, envs); err != nil {
		return err
	}
	fmt.Printf("load average at the end: %s\n", loadAverage())
	for _, e := range envs {
		sl, err := slowest(ctx, e.rdb)
		if err != nil {
			return err
		}
		fmt.Printf("slowlog %s longest %.3f ms (%s); entries above %d ms: %d of commands whose cost is bounded or whose re-runs were not slow (stalls), %d of others\n",
			e.name, ms(sl.any), sl.anyCmd, slowGoal.Milliseconds(), sl.overBounded, sl.overGrows)
		if sl.stallCmd != "" {
			fmt.Printf("slowlog %s longest stall of a command whose cost can grow: %.3f ms (%s), its re-runs %.3f ms (median of %d)\n",
				e.name, ms(sl.stall), sl.stallCmd, ms(sl.stallRerun), reruns)
		}
		verdict := "met"
		if sl.grows > slowGoal {
			verdict = "NOT MET"
		}
		fmt.Printf("slowlog %s longest of the commands whose cost can grow with the data %.3f ms (%s) goal <= %d ms %s\n",
			e.name, ms(sl.grows), sl.growsCmd, slowGoal.Milliseconds(), verdict)
	}
	return nil
}

// state carries what one round's paths hand each other on one size: the
// instances provision created, for bind and deprovision.
type state struct {
	round int
	ids   []string
	pg    []string
}

// path is one measured request kind: prepare (unmeasured) then do, n
// times, sequentially.
type path struct {
	name    string
	n       int
	prepare func(ctx context.Context, e *env, i int, st *state) error
	do      func(ctx context.Context, e *env, i int, st *state) error
}

// measure runs the path n times on each size, alternating sizes request
// by request (which goes first alternates too), so that a burst of load
// on this shared machine lands on both sizes alike.
func (p path) measure(ctx context.Context, envs []*env, states [2]*state, round int) ([2][]time.Duration, error) {
	var out [2][]time.Duration
	for i := range p.n {
		for k := range 2 {
			which := (i + k + round) % 2
			if p.prepare != nil {
				if err := p.prepare(ctx, envs[which], i, states[which]); err != nil {
					return out, fmt.Errorf("on %s: %w", envs[which].name, err)
				}
			}
		}
	}
	for i := range p.n {
		for k := range 2 {
			if err := ctx.Err(); err != nil {
				return out, err
			}
			which := (i + k + round) % 2
			start := time.Now()
			if err := p.do(ctx, envs[which], i, states[which]); err != nil {
				return out, fmt.Errorf("on %s: %w", envs[which].name, err)
			}
			out[which] = append(out[which], time.Since(start))
		}
	}
	return out, nil
}

func printRatio(name string, v float64) {
	verdict := "met"
	if !(v <= goal) {
		verdict = "NOT MET"
	}
	fmt.Printf("ratio %s %.3f goal <= %.1f %s\n", name, v, goal, verdict)
}

func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[min(max(i-1, 0), len(s)-1)]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func perInstance(d time.Duration, n int) float64 {
	if n == 0 {
		return 0
	}
	return float64(d.Microseconds()) / float64(n)
}

func infoField(info, field string) string {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			return v
		}
	}
	return "?"
}

// printCommandStats shows each command's mean cost while measuring, per
// size: where a cost grew with the data it would show here, stalls (a
// process waiting for a CPU) being spread over many calls.
func printCommandStats(ctx context.Context, envs []*env) error {
	stats := [2]map[string][2]float64{} // command -> calls, µs per call
	names := map[string]bool{}
	for i, e := range envs {
		info, err := e.rdb.Info(ctx, "commandstats").Result()
		if err != nil {
			return err
		}
		stats[i] = map[string][2]float64{}
		for _, line := range strings.Split(info, "\n") {
			name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
			name, found := strings.CutPrefix(name, "cmdstat_")
			if !ok || !found {
				continue
			}
			var calls, perCall float64
			for _, kv := range strings.Split(rest, ",") {
				k, v, _ := strings.Cut(kv, "=")
				f, _ := strconv.ParseFloat(v, 64)
				switch k {
				case "calls":
					calls = f
				case "usec_per_call":
					perCall = f
				}
			}
			stats[i][name] = [2]float64{calls, perCall}
			names[name] = true
		}
	}
	fmt.Printf("\n%-16s %10s %12s %10s %12s\n", "redis command", "calls "+envs[0].name, "µs/call "+envs[0].name, "calls "+envs[1].name, "µs/call "+envs[1].name)
	for _, name := range slices.Sorted(maps.Keys(names)) {
		a, b := stats[0][name], stats[1][name]
		if a[0]+b[0] < 10 {
			continue // setup, probes
		}
		fmt.Printf("%-16s %10.0f %12.2f %10.0f %12.2f\n", name, a[0], a[1], b[0], b[1])
	}
	return nil
}

func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.Join(strings.Fields(string(data))[:3], " ")
}

// ---- HTTP ----

func (e *env) request(ctx context.Context, method, path, bearer string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, e.url+path, body)
	if err != nil {
		return nil, err
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	} else {
		req.SetBasicAuth(user, pass)
	}
	req.Header.Set("X-Broker-API-Version", apiVersion)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, nil
}

// get answers the body of a 200, or an error naming what came instead.
func (e *env) get(ctx context.Context, path, bearer string) ([]byte, error) {
	req, err := e.request(ctx, http.MethodGet, path, bearer, nil)
	if err != nil {
		return nil, err
	}
	resp, err := e.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %s", path, resp.Status, bytes.TrimSpace(body))
	}
	return body, nil
}

func (e *env) send(ctx context.Context, method, path string, body any, want int) error {
	var r io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return err
		}
		r = bytes.NewReader(data)
	}
	req, err := e.request(ctx, method, path, "", r)
	if err != nil {
		return err
	}
	resp, err := e.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %s, want %d: %s", method, path, resp.Status, want, bytes.TrimSpace(answer))
	}
	return nil
}

// provision creates a sync instance through the OSB API.
func (e *env) provision(ctx context.Context, iid, serviceID, planID string) error {
	return e.send(ctx, http.MethodPut, "/v2/service_instances/"+iid, map[string]any{
		"service_id": serviceID, "plan_id": planID, "organization_guid": "bench-org", "space_guid": "bench-space",
	}, http.StatusCreated)
}

type instancePage struct {
	Instances  []json.RawMessage `json:"instances"`
	NextCursor string            `json:"next_cursor"`
}

func (e *env) instancePage(ctx context.Context, path, bearer string) (*instancePage, error) {
	body, err := e.get(ctx, path, bearer)
	if err != nil {
		return nil, err
	}
	var page instancePage
	return &page, json.Unmarshal(body, &page)
}

// walkTally is what the full walks of one size read, and how long their
// pages took.
type walkTally struct {
	walks, instances int
	took             time.Duration
	cursor           string
	thisWalk         int
}

// walkBoth walks the big size's listing once, and the small one's as
// many times as that takes, a page of each in turn. Only complete walks
// count, and each must have seen every seeded instance.
func walkBoth(ctx context.Context, envs []*env) ([2]walkTally, error) {
	var t [2]walkTally
	var partial [2]time.Duration
	for t[1].walks == 0 {
		for i, e := range envs {
			q := url.Values{"limit": {"1000"}}
			if t[i].cursor != "" {
				q.Set("cursor", t[i].cursor)
			}
			start := time.Now()
			page, err := e.instancePage(ctx, "/producers/"+producerName+"/instances?"+q.Encode(), e.prodToken)
			if err != nil {
				return t, fmt.Errorf("full walk on %s: %w", e.name, err)
			}
			partial[i] += time.Since(start)
			t[i].thisWalk += len(page.Instances)
			if t[i].cursor = page.NextCursor; t[i].cursor != "" {
				continue
			}
			if t[i].thisWalk < e.size {
				return t, fmt.Errorf("a full walk on %s saw %d instances, fewer than the %d seeded", e.name, t[i].thisWalk, e.size)
			}
			t[i].walks++
			t[i].instances += t[i].thisWalk
			t[i].took += partial[i]
			t[i].thisWalk, partial[i] = 0, 0
		}
		if n := t[1].thisWalk; n > 0 && n%100_000 < 1000 {
			fmt.Printf("    %s: %d instances so far\n", envs[1].name, n)
		}
	}
	return t, nil
}
