package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/agora-osb/agora/broker"
	"github.com/agora-osb/agora/producers/producerapi"
)

// upgradeLong is the help text of `agora producer upgrade` and `agora
// admin upgrade` (docs/upgrades.md); the table adds usage and flags.
const upgradeLong = `Forms:
  OFFERING PLAN   upgrade every instance of the plan below its published
                  maintenance_info version (or only --instances), on the
                  async engine, and wait, printing done/failed/remaining
  status ID       a run's progress and per-instance outcomes (waits with --wait)
  retry ID        start a run's failed instances again, and wait

Exit status 1 when an instance failed: retry with ` + "`agora %[1]s upgrade retry ID`" + `.`

// upgradeOptions are the flags of `agora producer|admin upgrade`.
type upgradeOptions struct {
	output, instances, as, url, user, pass *string
	concurrency                            *int
	dryRun, noWait, wait                   *bool
	interval                               *time.Duration
}

// upgradeFlags declares the flags of the scope's upgrade command, for the
// command table's help and completion and for the run itself.
func upgradeFlags(scope string, fs *flag.FlagSet) upgradeOptions {
	o := upgradeOptions{as: new(string), url: new(string), user: new(string), pass: new(string)}
	if scope == "admin" {
		a := adminFlags("upgrade", fs)
		o.output, o.url, o.user, o.pass = a.output, a.url, a.user, a.pass
	} else {
		o.output = outputFlag(fs)
		o.as = fs.String("as", "", "act as this saved login for this command (agora producer logins lists them)")
	}
	o.instances = fs.String("instances", "", "only these instance IDs, comma-separated")
	o.concurrency = fs.Int("concurrency", 0, "instances upgrading at once (default 5)")
	o.dryRun = fs.Bool("dry-run", false, "list what would be upgraded; change nothing")
	o.noWait = fs.Bool("no-wait", false, "return once the run is started")
	o.wait = fs.Bool("wait", false, "status: wait until the run finishes")
	o.interval = fs.Duration("interval", 2*time.Second, "how often to poll while waiting")
	return o
}

// upgradeCommand is the command table's entry for the scope's upgrade.
func upgradeCommand(scope string) command {
	return command{
		Name: "upgrade", Args: "OFFERING PLAN | status ID | retry ID [flags]",
		Short: "bulk upgrade to the plan's maintenance_info version (docs/upgrades.md)",
		Long:  fmt.Sprintf(upgradeLong, scope),
		Flags: func(fs *flag.FlagSet) { upgradeFlags(scope, fs) },
		Run: func(ctx context.Context, args []string, s streams) error {
			return upgradeCmd(ctx, scope, args, s.out, s.errOut)
		},
	}
}

// upgradeCmd runs `agora producer upgrade` (scope "producer", with the
// saved login) or `agora admin upgrade` (scope "admin", with the broker
// credentials).
func upgradeCmd(ctx context.Context, scope string, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet(scope+" upgrade", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := upgradeFlags(scope, fs)
	output, instances, concurrency, dryRun, noWait, wait, interval := o.output, o.instances, o.concurrency, o.dryRun, o.noWait, o.wait, o.interval
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if *interval <= 0 {
		return errors.New("--interval must be above 0")
	}
	c, producer, err := upgradeClient(scope, o)
	if err != nil {
		return err
	}
	var u *broker.Upgrade
	switch {
	case len(pos) == 2 && pos[0] == "status":
		if u, err = c.Upgrade(ctx, producer, pos[1]); err != nil {
			return err
		}
		if !*wait {
			return showUpgrade(stdout, *output, u)
		}
	case len(pos) == 2 && pos[0] == "retry":
		if u, err = c.RetryUpgrade(ctx, producer, pos[1]); err != nil {
			return err
		}
	case len(pos) == 2:
		req := producerapi.StartUpgradeRequest{Offering: pos[0], Plan: pos[1], Concurrency: *concurrency, DryRun: *dryRun}
		if *instances != "" {
			req.InstanceIDs = strings.Split(*instances, ",")
		}
		if u, err = c.StartUpgrade(ctx, producer, req); err != nil {
			return err
		}
		if *dryRun {
			return showUpgrade(stdout, *output, u)
		}
	default:
		return usageError("usage: agora %s upgrade OFFERING PLAN | status ID | retry ID (agora %s upgrade -h)", scope, scope)
	}
	if *noWait {
		return emit(stdout, *output, u, func(w io.Writer) {
			fmt.Fprintf(w, "bulk upgrade %s of %s/%s to %s: %d instances; follow it with: agora %s upgrade status %s --wait\n",
				u.ID, u.Offering, u.Plan, u.Version, u.Counts.Total, scope, u.ID)
		})
	}
	if *output != "json" {
		fmt.Fprintf(stdout, "bulk upgrade %s of %s/%s to %s: %d instances, %d at once\n", u.ID, u.Offering, u.Plan, u.Version, u.Counts.Total, u.Concurrency)
	}
	if u, err = waitUpgrade(ctx, c, producer, u, *interval, *output, stdout); err != nil {
		return err
	}
	if err := showUpgrade(stdout, *output, u); err != nil {
		return err
	}
	if u.Counts.Failed > 0 {
		return fmt.Errorf("%d of %d instances failed to upgrade; retry them with: agora %s upgrade retry %s", u.Counts.Failed, u.Counts.Total, scope, u.ID)
	}
	return nil
}

// upgradeClient is the API client of the scope, and the producer whose
// routes it calls ("" for the admin's).
func upgradeClient(scope string, o upgradeOptions) (*producerapi.Client, string, error) {
	if scope == "admin" {
		c, err := adminClient(o.url, o.user, o.pass)
		return c, "", err
	}
	l, err := loadLogin(*o.as)
	if err != nil {
		return nil, "", err
	}
	return &producerapi.Client{BaseURL: l.URL, Token: l.Token}, l.Name, nil
}

// waitUpgrade polls the run until it finishes, printing a progress line
// whenever the counts change (text output only).
func waitUpgrade(ctx context.Context, c *producerapi.Client, producer string, u *broker.Upgrade, interval time.Duration, output string, stdout io.Writer) (*broker.Upgrade, error) {
	last := broker.UpgradeCounts{Total: -1}
	for {
		if output != "json" && u.Counts != last {
			last = u.Counts
			fmt.Fprintf(stdout, "%s  done %d  failed %d  remaining %d (running %d)\n",
				time.Now().UTC().Format(time.TimeOnly), u.Counts.Done, u.Counts.Failed, u.Counts.Remaining, u.Counts.Running)
		}
		if u.State != broker.RunRunning {
			return u, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("stopped waiting (the run goes on; see agora ... upgrade status %s): %w", u.ID, ctx.Err())
		case <-time.After(interval):
		}
		next, err := c.Upgrade(ctx, producer, u.ID)
		if err != nil {
			return nil, err
		}
		u = next
	}
}

// showUpgrade prints a run: its summary and the per-instance outcomes.
func showUpgrade(stdout io.Writer, output string, u *broker.Upgrade) error {
	return emit(stdout, output, u, func(w io.Writer) {
		id := u.ID
		if u.State == broker.RunDryRun {
			id = "(dry run, nothing changed)"
		}
		fmt.Fprintf(w, "upgrade %s  %s/%s to %s  %s  upgraded %d  failed %d  remaining %d  of %d\n",
			id, u.Offering, u.Plan, u.Version, u.State, u.Counts.Done, u.Counts.Failed, u.Counts.Remaining, u.Counts.Total)
		if len(u.Instances) == 0 {
			fmt.Fprintln(w, "no instance needs the upgrade")
			return
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "INSTANCE\tFROM\tSTATE\tDETAIL")
		for _, it := range u.Instances {
			state := string(it.State)
			if u.State == broker.RunDryRun && it.State == broker.UpgradePending {
				state = "would upgrade"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", it.InstanceID, orDash(it.From), state, it.Detail)
		}
		_ = tw.Flush()
	})
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
