// Package canary is continuous conformance: on a schedule, the same
// conformance kit the gate runs on apply is run against every live
// remote offering of every active producer (provision, bind, verify,
// unbind, deprovision, with every check of the kit), and its verdict is
// the offering's health, stored in Redis for the producer's status, the
// platform engineer's view, the marketplace page and the metrics.
//
// One replica runs it at a time, through a Redis lease; the others keep
// trying to take the lease, so the canary survives any one of them. It
// connects only where the platform engineer's egress rules allow (the
// same rules as the gate), and every instance and binding the kit
// creates is removed by the kit before the run ends, whatever failed;
// what could not be removed is reported in the result (the kit's cleanup
// check).
package canary

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/agora-osb/agora/producers"
)

// cleanupAttempts is how many times a canary run tries to remove what it
// created (1s, then 2s apart).
const cleanupAttempts = 3

// Store keeps the lease and the results (redisstore.CanaryResults).
type Store interface {
	Acquire(ctx context.Context, holder string, ttl time.Duration) (bool, error)
	Release(ctx context.Context, holder string) error
	Put(ctx context.Context, r producers.CanaryResult) error
	Results(ctx context.Context) (map[string]producers.CanaryResult, error)
	Forget(ctx context.Context, offeringIDs []string) error
}

// Source lists the live remote offerings and applies the egress rules
// (producers.Service).
type Source interface {
	LiveRemoteOfferings(ctx context.Context) ([]producers.LiveOffering, map[string]error, error)
	CheckEgress(ctx context.Context, rawURL string) error
}

// Config wires a Canary.
type Config struct {
	Store  Store
	Source Source
	// Gate runs the kit against one offering: the producer gate's own.
	Gate producers.Gate
	// Interval is how often each offering is checked (required, > 0).
	Interval time.Duration
	// Timeout bounds one offering's run (default 2m).
	Timeout time.Duration
	// Observe, when set, is told each run's outcome: pass, fail or error.
	Observe func(producer, offering, result string)
	Logger  *slog.Logger
	Now     func() time.Time
}

// Canary runs the kit against live offerings on a schedule.
type Canary struct {
	cfg    Config
	holder string
}

// New returns a Canary; Run starts it.
func New(cfg Config) (*Canary, error) {
	if cfg.Store == nil || cfg.Source == nil || cfg.Gate == nil {
		return nil, fmt.Errorf("canary: Store, Source and Gate are required")
	}
	if cfg.Interval <= 0 {
		return nil, fmt.Errorf("canary: the interval must be positive (it is off when none is set)")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	return &Canary{cfg: cfg, holder: "canary-" + hex.EncodeToString(b[:])}, nil
}

// Run checks every due offering, then waits a tick, until ctx ends. The
// tick is a fraction of the interval, so a new offering, or a lease left
// by a replica that died, is picked up well within one interval.
func (c *Canary) Run(ctx context.Context) {
	tick := min(max(c.cfg.Interval/4, time.Second), 30*time.Second)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		if _, err := c.RunOnce(ctx); err != nil && ctx.Err() == nil {
			c.cfg.Logger.Warn("canary: this round did not run; trying again", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// RunOnce takes the lease, if free, and checks every offering whose last
// result is older than the interval. It returns how many it checked.
func (c *Canary) RunOnce(ctx context.Context) (int, error) {
	leaseTTL := c.cfg.Timeout + 30*time.Second
	got, err := c.cfg.Store.Acquire(ctx, c.holder, leaseTTL)
	if err != nil || !got {
		return 0, err
	}
	defer func() {
		// A fresh context: a cancelled run still gives the lease up.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = c.cfg.Store.Release(rctx, c.holder)
	}()
	live, problems, err := c.cfg.Source.LiveRemoteOfferings(ctx)
	if err != nil {
		return 0, err
	}
	last, err := c.cfg.Store.Results(ctx)
	if err != nil {
		return 0, err
	}
	c.forgetGone(ctx, live, last)
	ran := 0
	for _, off := range live {
		if ctx.Err() != nil {
			break
		}
		prev, seen := last[off.ID]
		if seen && c.cfg.Now().Sub(prev.At) < c.cfg.Interval {
			continue
		}
		// Keep the lease for as long as this offering may take.
		if ok, err := c.cfg.Store.Acquire(ctx, c.holder, leaseTTL); err != nil || !ok {
			return ran, err
		}
		res := c.check(ctx, off, prev.Plan, problems[off.ID])
		if seen && res.LastSuccess.IsZero() {
			res.LastSuccess = prev.LastSuccess
		}
		if err := c.cfg.Store.Put(ctx, res); err != nil {
			return ran, err
		}
		ran++
	}
	return ran, nil
}

// forgetGone drops the results of offerings no longer live.
func (c *Canary) forgetGone(ctx context.Context, live []producers.LiveOffering, last map[string]producers.CanaryResult) {
	var gone []string
	for id := range last {
		if !slices.ContainsFunc(live, func(o producers.LiveOffering) bool { return o.ID == id }) {
			gone = append(gone, id)
		}
	}
	if err := c.cfg.Store.Forget(ctx, gone); err != nil {
		c.cfg.Logger.Warn("canary: results of removed offerings could not be dropped", "error", err)
	}
}

// check runs the kit against one plan of an offering and turns its report into the
// offering's health.
//
// Each run judges one plan, the next after lastPlan: every interval is
// one kit run per offering, and every plan is judged in turn.
func (c *Canary) check(ctx context.Context, off producers.LiveOffering, lastPlan string, problem error) producers.CanaryResult {
	req := off.Request
	plan := ""
	if j := producers.NextPlan(req, lastPlan); j >= 0 {
		req = req.ForPlan(j)
		plan = req.Plans[0].Plan.Name
	}
	// Unattended against a live backend: what the run created is removed
	// even if the backend stumbles once; what stays is in the result.
	req.CleanupAttempts = cleanupAttempts
	start := c.cfg.Now()
	res := producers.CanaryResult{OfferingID: off.ID, Producer: req.Producer, Offering: req.Offering, Plan: plan, At: start.UTC()}
	result := "error"
	defer func() {
		res.DurationMS = c.cfg.Now().Sub(start).Milliseconds()
		if c.cfg.Observe != nil {
			c.cfg.Observe(req.Producer, req.Offering, result)
		}
		c.cfg.Logger.Info("canary checked an offering", "producer", req.Producer, "offering", req.Offering, "plan", plan, "passed", res.Passed, "summary", res.Summary)
	}()
	if problem != nil {
		res.Error, res.Summary = problem.Error(), "not run: "+problem.Error()
		return res
	}
	if err := c.cfg.Source.CheckEgress(ctx, req.URL); err != nil {
		res.Error, res.Summary = err.Error(), "not run: "+err.Error()
		return res
	}
	rctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	report, err := c.cfg.Gate(rctx, req)
	if err != nil {
		msg := scrub(err.Error(), req.Secret)
		res.Error, res.Summary = msg, "not run: "+msg
		return res
	}
	res.Summary = report.Summary()
	for _, r := range report.Results {
		if r.Failed() {
			res.Failed = append(res.Failed, scrub(r.Name+": "+r.Detail, req.Secret))
		}
	}
	res.Unverified = report.Unverified
	res.Passed = !report.Failed()
	if res.Passed {
		result = "pass"
		res.LastSuccess = res.At
	} else {
		result = "fail"
		where := ""
		if plan != "" {
			where = "plan " + plan + ": "
		}
		res.Summary += ": " + where + firstLine(res.Failed[0])
	}
	return res
}

func scrub(s, secret string) string {
	if secret == "" {
		return s
	}
	return strings.ReplaceAll(s, secret, "<redacted>")
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
