package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
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
	// The slowlog from here on is the measured paths' own.
	for _, e := range envs {
		if err := e.rdb.SlowLogReset(ctx).Err(); err != nil {
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
			return e.send(ctx, http.MethodPut, "/v2/service_instances/"+iid, map[string]any{
				"service_id": e.secretsService, "plan_id": e.secretsPlan, "organization_guid": "bench-org", "space_guid": "bench-space",
			}, http.StatusCreated)
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
		{name: "deprovision_postgres", n: max(o.vaultSamples/2, 1), prepare: func(ctx context.Context, e *env, i int, st *state) error {
			iid := fmt.Sprintf("pg-%s-%d-%d", e.name, st.round, i)
			st.pg = append(st.pg, iid)
			return e.send(ctx, http.MethodPut, "/v2/service_instances/"+iid, map[string]any{
				"service_id": e.postgresService, "plan_id": e.postgresPlan, "organization_guid": "bench-org", "space_guid": "bench-space",
			}, http.StatusCreated)
		}, do: func(ctx context.Context, e *env, i int, st *state) error {
			return e.send(ctx, http.MethodDelete, "/v2/service_instances/"+st.pg[i]+"?service_id="+e.postgresService+"&plan_id="+e.postgresPlan, nil, http.StatusOK)
		}},
		{name: "producer_listing_first_page", n: max(o.samples/10, 5), do: func(ctx context.Context, e *env, _ int, _ *state) error {
			page, err := e.instancePage(ctx, "/producers/"+producerName+"/instances?limit=100", e.prodToken)
			if err == nil && len(page.Instances) == 0 {
				err = errors.New("the first page is empty")
			}
			return err
		}},
		{name: "admin_listing_first_page", n: max(o.samples/10, 5), do: func(ctx context.Context, e *env, _ int, _ *state) error {
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
	fmt.Printf("measuring: %d alternating rounds, %d requests per round for the cheap paths, %d for those calling Vault or PostgreSQL\n", o.rounds, o.samples, o.vaultSamples)
	for round := range o.rounds {
		// The order of the sizes alternates too, so neither always goes first.
		order := []int{0, 1}
		if round%2 == 1 {
			order = []int{1, 0}
		}
		states := [2]*state{{round: round}, {round: round}}
		for _, p := range paths {
			for _, i := range order {
				lat, err := p.measure(ctx, envs[i], states[i])
				if err != nil {
					return fmt.Errorf("%s on %s: %w", p.name, envs[i].name, err)
				}
				results[p.name][i] = append(results[p.name][i], lat...)
			}
		}
		fmt.Printf("  round %d of %d done\n", round+1, o.rounds)
	}

	fmt.Println("\nfull walk of the producer's listing (pages of 1000), once per size")
	walk := [2]time.Duration{}
	walked := [2]int{}
	for i, e := range envs {
		if walk[i], walked[i], err = e.fullWalk(ctx); err != nil {
			return fmt.Errorf("full walk on %s: %w", e.name, err)
		}
		fmt.Printf("  %s: %d instances in %s (%.1f µs per instance)\n", e.name, walked[i], walk[i].Round(time.Millisecond), perInstance(walk[i], walked[i]))
		if walked[i] < e.size {
			return fmt.Errorf("the full walk on %s saw %d instances, fewer than the %d seeded", e.name, walked[i], e.size)
		}
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
	printRatio("producer_listing_full_walk_per_instance", perInstance(walk[1], walked[1])/perInstance(walk[0], walked[0]))

	fmt.Println()
	for i, e := range envs {
		rss, peak := rssKiB(e.agora.Process.Pid)
		fmt.Printf("agora RSS %s: %.1f MiB (peak %.1f MiB)\n", e.name, float64(rss)/1024, float64(peak)/1024)
		mem, _ := e.rdb.Info(ctx, "memory").Result()
		fmt.Printf("redis used_memory %s: %s\n", e.name, infoField(mem, "used_memory_human"))
		fmt.Printf("seeding %s: %s\n", e.name, seeding[i].Round(time.Millisecond))
	}
	for _, e := range envs {
		d, what, err := slowest(ctx, e.rdb)
		if err != nil {
			return err
		}
		verdict := "met"
		if d > slowGoal {
			verdict = "NOT MET"
		}
		fmt.Printf("slowlog %s longest %.3f ms (%s) goal <= %d ms %s\n", e.name, ms(d), what, slowGoal.Milliseconds(), verdict)
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

func (p path) measure(ctx context.Context, e *env, st *state) ([]time.Duration, error) {
	if p.prepare != nil {
		for i := range p.n {
			if err := p.prepare(ctx, e, i, st); err != nil {
				return nil, err
			}
		}
	}
	out := make([]time.Duration, 0, p.n)
	for i := range p.n {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		start := time.Now()
		if err := p.do(ctx, e, i, st); err != nil {
			return nil, err
		}
		out = append(out, time.Since(start))
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

// slowest is the longest slowlog entry since the reset, and its command.
func slowest(ctx context.Context, rdb *redis.Client) (time.Duration, string, error) {
	logs, err := rdb.SlowLogGet(ctx, -1).Result()
	if err != nil {
		return 0, "", err
	}
	var d time.Duration
	what := "none over 1 ms"
	for _, l := range logs {
		if l.Duration > d {
			d = l.Duration
			args := l.Args
			if len(args) > 3 {
				args = append(args[:3:3], "...")
			}
			what = strings.Join(args, " ")
		}
	}
	return d, what, nil
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

// fullWalk reads every page of the producer's listing.
func (e *env) fullWalk(ctx context.Context) (time.Duration, int, error) {
	start := time.Now()
	n, pages := 0, 0
	for cursor := ""; ; {
		q := url.Values{"limit": {strconv.Itoa(1000)}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		page, err := e.instancePage(ctx, "/producers/"+producerName+"/instances?"+q.Encode(), e.prodToken)
		if err != nil {
			return 0, n, err
		}
		n += len(page.Instances)
		pages++
		if pages%100 == 0 {
			fmt.Printf("    %s: %d pages, %d instances, %s\n", e.name, pages, n, time.Since(start).Round(time.Second))
		}
		if cursor = page.NextCursor; cursor == "" {
			return time.Since(start), n, nil
		}
	}
}
