package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/agora-osb/agora/producers"
	"github.com/agora-osb/agora/producers/producerapi"
)

// The gate's and the canary's words on the command line: the checks of
// a gate report with their hints and what keeps a version from automatic
// approval, and the canary's verdicts for the producer and the platform
// engineer.

// adminCanary prints `agora admin canary`.
func adminCanary(ctx context.Context, c *producerapi.Client, stdout io.Writer, output string) error {
	hs, err := c.Canary(ctx)
	if err != nil {
		return err
	}
	return emit(stdout, output, hs, func(w io.Writer) {
		if len(hs) == 0 {
			fmt.Fprintln(w, "no canary results: the canary is off (gate.canary.interval) or has not run yet")
			return
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PRODUCER\tOFFERING\tPLAN\tHEALTH\tCHECKED\tLAST SUCCESS\tSUMMARY")
		for _, h := range hs {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", h.Producer, h.Offering, orDash(h.Plan), healthWord(&h), h.At.Format(time.DateTime), lastSuccess(&h), h.Summary)
		}
		_ = tw.Flush()
		for _, h := range hs {
			for _, f := range h.Failed {
				fmt.Fprintf(w, "%s/%s FAIL %s\n", h.Producer, h.Offering, firstLineOf(f))
			}
		}
	})
}

// healthWord is an offering's health in one word.
func healthWord(h *producers.CanaryResult) string {
	switch {
	case h == nil:
		return "-"
	case h.Passed:
		return "ok"
	case h.Error != "":
		return "not-run"
	}
	return "FAILING"
}

func lastSuccess(h *producers.CanaryResult) string {
	if h.LastSuccess.IsZero() {
		return "never"
	}
	return h.LastSuccess.Format(time.DateTime)
}

func firstLineOf(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// printGateVerdict prints what a gate report means for approval: the
// credential types nobody verified, and why the version waits for the
// platform engineer.
func printGateVerdict(w io.Writer, g *producers.GateResult) {
	for _, u := range g.Unverified {
		fmt.Fprintf(w, "unverified: %s\n", u)
	}
	for _, why := range g.NotAutoApprovable {
		fmt.Fprintf(w, "not approved automatically: %s\n", why)
	}
}

// printHealth prints the canary's verdict on each offering of a status.
func printHealth(w io.Writer, offs []producers.OfferingView) {
	for _, o := range offs {
		if o.Health == nil {
			continue
		}
		h := o.Health
		name := o.Name
		if h.Plan != "" {
			name += " plan " + h.Plan // the canary judges one plan per run
		}
		fmt.Fprintf(w, "canary     %s: %s at %s (%s), last success %s\n", name, healthWord(h), h.At.Format(time.DateTime), h.Summary, lastSuccess(h))
		for _, f := range h.Failed {
			fmt.Fprintf(w, "           FAIL %s\n", firstLineOf(f))
		}
	}
}

// adminSliceShow prints `agora admin slices show NAME VERSION`: what the
// platform engineer reads before she approves.
func adminSliceShow(ctx context.Context, c *producerapi.Client, stdout io.Writer, output, name string, v int) error {
	sv, err := c.Version(ctx, name, v)
	if err != nil {
		return err
	}
	return emit(stdout, output, sv, func(w io.Writer) {
		fmt.Fprintf(w, "version %d of %s: %s (%s by %s, %s)\n", sv.Version, name, sv.Status, sv.Action, sv.Author, sv.CreatedAt.Format(time.DateTime))
		if sv.Gate != nil {
			printGate(w, sv.Gate)
		}
	})
}

// printLatest prints her newest version's gate verdict in her status:
// the checks that did not pass, with their hints, and why it waits.
func printLatest(w io.Writer, v *producers.SliceVersion) {
	if v == nil || v.Gate == nil {
		return
	}
	fmt.Fprintf(w, "gate       v%d (%s): %s\n", v.Version, v.Status, v.Gate.Summary)
	for _, c := range v.Gate.Checks {
		if c.Result != "fail" {
			continue
		}
		where := c.Offering
		if c.Plan != "" {
			where += "/" + c.Plan
		}
		fmt.Fprintf(w, "           FAIL %s/%s: %s\n", where, c.Name, firstLineOf(c.Detail))
		if c.Hint != "" {
			fmt.Fprintf(w, "             hint: %s\n", firstLineOf(c.Hint))
		}
	}
	for _, u := range v.Gate.Unverified {
		fmt.Fprintf(w, "           unverified: %s\n", u)
	}
	if v.Status == producers.SlicePendingApproval {
		for _, why := range v.Gate.NotAutoApprovable {
			fmt.Fprintf(w, "           not approved automatically: %s\n", why)
		}
	}
}
