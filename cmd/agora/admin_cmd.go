package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/agora-osb/agora/broker"
	"github.com/agora-osb/agora/producers"
	"github.com/agora-osb/agora/producers/producerapi"
)

// adminOptions are the flags of agora admin's commands: every command
// takes the credentials and -o, and declares its own on top; the rest stay
// at their zero value.
type adminOptions struct {
	url, user, pass, output                    *string
	contact, namespace, reason                 *string
	producer, offering, state, binding, cursor *string
	autoApprove, apply                         *bool
	stuckFor                                   *time.Duration
	limit                                      *int
}

// adminFlags declares the flags of the admin command cmd ("producers
// create", "orphans").
func adminFlags(cmd string, fs *flag.FlagSet) adminOptions {
	o := adminOptions{
		// The environment fills these in after parsing, so that help
		// never prints a password as a default.
		url:     fs.String("url", "", "Agora's URL (default $AGORA_URL, else http://127.0.0.1:8080)"),
		user:    fs.String("username", "", "Agora's broker username (default $AGORA_USERNAME)"),
		pass:    fs.String("password", "", "Agora's broker password (default $AGORA_PASSWORD)"),
		output:  outputFlag(fs),
		contact: new(string), namespace: new(string), reason: new(string), producer: new(string), offering: new(string),
		state: new(string), binding: new(string), cursor: new(string), autoApprove: new(bool), apply: new(bool),
		stuckFor: new(time.Duration), limit: new(int),
	}
	switch cmd {
	case "producers create":
		o.contact = fs.String("contact", "", "who to call when her service breaks")
		o.namespace = fs.String("namespace", "", "prefix of her offering names (default NAME-)")
		o.autoApprove = fs.Bool("auto-approve", false, "her slices go live once the gate passes")
	case "slices reject":
		o.reason = fs.String("reason", "", "why, for her to read")
	case "instances list":
		o.producer = fs.String("producer", "", "only this producer's")
		o.offering = fs.String("offering", "", "only this offering's")
		o.state = fs.String("state", "", "failed, in_progress or stuck")
		o.stuckFor = fs.Duration("stuck-for", 30*time.Minute, "with --state stuck: in progress for this long")
		o.cursor = fs.String("cursor", "", "go on from this page (printed at the end of the last)")
		o.limit = fs.Int("limit", 100, "instances per page")
	case "instances retry":
		o.binding = fs.String("binding", "", "the binding's operation, not the instance's")
	case "instances force-fail":
		o.binding = fs.String("binding", "", "the binding's operation, not the instance's")
		o.reason = fs.String("reason", "", "why (required)")
	case "orphans":
		o.apply = fs.Bool("apply", false, "repair what is found (delete orphaned secrets, mark bindings without credentials failed)")
	}
	return o
}

func adminCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	// The command table (commands.go) passes only commands it knows.
	if len(args) == 0 {
		return usageError("usage: agora admin <command>")
	}
	group := args[0]
	args = args[1:]
	cmd := ""
	if group != "catalog" && group != "orphans" && group != "canary" {
		if len(args) == 0 {
			return usageError("usage: agora admin %s <command>", group)
		}
		cmd, args = args[0], args[1:]
	}
	fs := newFlagSet(strings.TrimSpace("admin " + group + " " + cmd))
	o := adminFlags(strings.TrimSpace(group+" "+cmd), fs)
	url, user, pass, output := o.url, o.user, o.pass, o.output
	contact, namespace, autoApprove, reason := o.contact, o.namespace, o.autoApprove, o.reason
	producerFlag, offeringFlag, stateFlag, stuckFor := o.producer, o.offering, o.state, o.stuckFor
	binding, cursor, limit, apply := o.binding, o.cursor, o.limit, o.apply
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	c, err := adminClient(url, user, pass)
	if err != nil {
		return err
	}
	want := func(n int, usage string) error {
		if len(pos) != n {
			return fmt.Errorf("usage: agora admin %s", usage)
		}
		return nil
	}
	version := func(s string) (int, error) {
		v, err := strconv.Atoi(strings.TrimPrefix(s, "v"))
		if err != nil || v <= 0 {
			return 0, fmt.Errorf("%q is not a version number", s)
		}
		return v, nil
	}
	showProducer := func(p *producers.Producer, err error) error {
		if err != nil {
			return err
		}
		return emit(stdout, *output, p, func(w io.Writer) { printProducers(w, []producers.Producer{*p}) })
	}
	showToken := func(created *producers.Created, err error) error {
		if err != nil {
			return err
		}
		return emit(stdout, *output, created, func(w io.Writer) {
			printProducers(w, []producers.Producer{created.Producer})
			fmt.Fprintf(w, "\nher token, shown only this once (give it to her over a safe channel):\n\n  %s\n\nshe logs in with: agora producer login --url %s --name %s\n", created.Token, *url, created.Producer.Name)
		})
	}

	switch group + " " + cmd {
	case "producers list":
		if err := want(0, "producers list"); err != nil {
			return err
		}
		ps, err := c.ListProducers(ctx)
		if err != nil {
			return err
		}
		return emit(stdout, *output, ps, func(w io.Writer) { printProducers(w, ps) })
	case "producers create":
		if err := want(1, "producers create NAME --contact EMAIL [--namespace P] [--auto-approve]"); err != nil {
			return err
		}
		return showToken(c.CreateProducer(ctx, producers.CreateRequest{Name: pos[0], Contact: *contact, Namespace: *namespace, AutoApproveSlices: *autoApprove}))
	case "producers approve":
		if err := want(1, "producers approve NAME"); err != nil {
			return err
		}
		return showProducer(c.ApproveProducer(ctx, pos[0]))
	case "producers suspend":
		if err := want(1, "producers suspend NAME"); err != nil {
			return err
		}
		return showProducer(c.SuspendProducer(ctx, pos[0]))
	case "producers auto-approve":
		if err := want(2, "producers auto-approve NAME true|false"); err != nil {
			return err
		}
		on, err := strconv.ParseBool(pos[1])
		if err != nil {
			return fmt.Errorf("%q: want true or false", pos[1])
		}
		return showProducer(c.UpdateProducer(ctx, pos[0], producers.UpdateRequest{AutoApproveSlices: &on}))
	case "producers token":
		if err := want(1, "producers token NAME"); err != nil {
			return err
		}
		return showToken(c.RotateToken(ctx, pos[0]))
	case "slices list":
		if err := want(1, "slices list NAME"); err != nil {
			return err
		}
		vs, err := c.AdminVersions(ctx, pos[0])
		if err != nil {
			return err
		}
		return emit(stdout, *output, vs, func(w io.Writer) { printVersions(w, vs) })
	case "slices show":
		if err := want(2, "slices show NAME VERSION"); err != nil {
			return err
		}
		v, err := version(pos[1])
		if err != nil {
			return err
		}
		return adminSliceShow(ctx, c, stdout, *output, pos[0], v)
	case "slices approve":
		if err := want(2, "slices approve NAME VERSION"); err != nil {
			return err
		}
		v, err := version(pos[1])
		if err != nil {
			return err
		}
		res, err := c.ApproveSlice(ctx, pos[0], v)
		return applyOutcome(stdout, *output, res, err)
	case "slices reject":
		if err := want(2, "slices reject NAME VERSION [--reason TEXT]"); err != nil {
			return err
		}
		v, err := version(pos[1])
		if err != nil {
			return err
		}
		res, err := c.RejectSlice(ctx, pos[0], v, *reason)
		return applyOutcome(stdout, *output, res, err)
	case "instances list":
		if err := want(0, "instances list [--producer P] [--offering O] [--state S]"); err != nil {
			return err
		}
		f := producers.InstanceFilter{Producer: *producerFlag, Offering: *offeringFlag, State: *stateFlag, StuckFor: *stuckFor}
		page, err := c.AllInstances(ctx, f, *cursor, *limit)
		if err != nil {
			return err
		}
		return emit(stdout, *output, page, func(w io.Writer) {
			printInstances(w, page.Instances)
			if page.NextCursor != "" {
				fmt.Fprintf(w, "\nmore: agora admin instances list --cursor %s (same filters)\n", page.NextCursor)
			}
		})
	case "instances show":
		if err := want(1, "instances show ID"); err != nil {
			return err
		}
		d, err := c.InstanceDetail(ctx, pos[0])
		if err != nil {
			return err
		}
		return emit(stdout, *output, d, func(w io.Writer) { printInstanceDetail(w, d) })
	case "instances retry":
		if err := want(1, "instances retry ID [--binding B]"); err != nil {
			return err
		}
		op, err := c.Retry(ctx, pos[0], *binding)
		return showRepair(stdout, *output, "retried", op, err)
	case "instances force-fail":
		if err := want(1, "instances force-fail ID --reason TEXT [--binding B]"); err != nil {
			return err
		}
		op, err := c.ForceFail(ctx, pos[0], *binding, *reason)
		return showRepair(stdout, *output, "force-failed", op, err)
	case "instances reconcile":
		if err := want(1, "instances reconcile ID"); err != nil {
			return err
		}
		rec, err := c.Reconcile(ctx, pos[0])
		if err != nil {
			return err
		}
		return emit(stdout, *output, rec, func(w io.Writer) { printReconciliation(w, rec) })
	case "orphans ":
		return sweepOrphans(ctx, c, stdout, stderr, *output, *apply)
	case "canary ":
		return adminCanary(ctx, c, stdout, *output)
	case "catalog ":
		st, err := c.CatalogStatus(ctx)
		if err != nil {
			return err
		}
		return emit(stdout, *output, st, func(w io.Writer) {
			fmt.Fprintf(w, "generation %d in Redis\n", st.Generation)
			if st.Replica != nil {
				fmt.Fprintf(w, "generation %d on the replica that answered\n", st.Replica.Generation)
				if st.Replica.LastError != "" {
					fmt.Fprintf(w, "ITS LAST REBUILD FAILED: %s\n", st.Replica.LastError)
				}
			}
		})
	}
	return usageError("unknown command %q", strings.TrimSpace(group+" "+cmd))
}

func printProducers(w io.Writer, ps []producers.Producer) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTATE\tNAMESPACE\tLIVE\tAUTO-APPROVE\tCONTACT")
	for _, p := range ps {
		live := "-"
		if p.LiveVersion > 0 {
			live = "v" + strconv.Itoa(p.LiveVersion)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%t\t%s\n", p.Name, p.State, p.Namespace, live, p.AutoApproveSlices, p.Contact)
	}
	_ = tw.Flush()
}

func printInstanceDetail(w io.Writer, d *producers.InstanceDetail) {
	printInstances(w, []producers.InstanceView{d.InstanceView})
	if op := d.Operation; op != nil {
		fmt.Fprintf(w, "\nlatest operation %s: %s %s (async %t, %d attempt(s), deadline %s)\n", op.ID, op.Kind, op.State, op.Async, op.Attempts, op.Deadline.Format(time.RFC3339))
		for label, text := range map[string]string{"description": op.Description, "detail": op.Detail, "last error": op.LastError} {
			if text != "" {
				fmt.Fprintf(w, "  %s: %s\n", label, text)
			}
		}
	}
	if len(d.Receipt) > 0 {
		fmt.Fprintln(w, "\nadapter receipt:")
		for k, v := range d.Receipt {
			fmt.Fprintf(w, "  %s: %s\n", k, v)
		}
	}
}

func showRepair(stdout io.Writer, output, what string, op *broker.Operation, err error) error {
	if err != nil {
		return err
	}
	return emit(stdout, output, op, func(w io.Writer) {
		fmt.Fprintf(w, "%s: operation %s (%s) is %s", what, op.ID, op.Kind, op.State)
		if op.Description != "" {
			fmt.Fprintf(w, ": %s", op.Description)
		}
		fmt.Fprintln(w)
	})
}

func printReconciliation(w io.Writer, rec *broker.Reconciliation) {
	fmt.Fprintf(w, "the backend says: %s", rec.Backend)
	if rec.Detail != "" {
		fmt.Fprintf(w, " (%s)", rec.Detail)
	}
	fmt.Fprintln(w)
	if rec.Operation == nil {
		fmt.Fprintf(w, "Agora's record (%s) already agrees; nothing changed\n", rec.Before)
		return
	}
	fmt.Fprintf(w, "corrected: %s -> %s (operation %s: %s)\n", rec.Before, rec.After, rec.Operation.ID, rec.Operation.Description)
}

// sweepOrphans walks every instance record, then every folder of secrets
// in Vault, a page at a time, saying how far it got.
func sweepOrphans(ctx context.Context, c *producerapi.Client, stdout, stderr io.Writer, output string, apply bool) error {
	var all []broker.Orphan
	for _, from := range []string{"records", "vault"} {
		checked := 0
		for cursor := ""; ; {
			page, err := c.Sweep(ctx, from, cursor, 500, apply)
			if err != nil {
				return err
			}
			checked += page.Checked
			all = append(all, page.Orphans...)
			fmt.Fprintf(stderr, "orphans: %d instance(s) checked from the %s, %d finding(s) so far\n", checked, from, len(all))
			if cursor = page.NextCursor; cursor == "" {
				break
			}
		}
	}
	return emit(stdout, output, all, func(w io.Writer) {
		if len(all) == 0 {
			fmt.Fprintln(w, "no orphans")
			return
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "KIND\tINSTANCE\tBINDING\tVAULT PATH\tREPAIRED")
		for _, o := range all {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%t\n", o.Kind, o.InstanceID, o.BindingID, o.Ref, o.Fixed)
		}
		_ = tw.Flush()
		if !apply {
			fmt.Fprintln(w, "\nnothing was changed; run again with --apply to repair these")
		}
	})
}

// adminClient is the API client of the admin commands: the flags, else
// the environment (filled in after parsing, so help never prints a
// password as a default).
func adminClient(url, user, pass *string) (*producerapi.Client, error) {
	*url = cmp.Or(*url, envOr("AGORA_URL", "http://127.0.0.1:8080"))
	*user = cmp.Or(*user, os.Getenv("AGORA_USERNAME"))
	*pass = cmp.Or(*pass, os.Getenv("AGORA_PASSWORD"))
	if *user == "" || *pass == "" {
		return nil, errors.New("admin commands need --username and --password (or AGORA_USERNAME, AGORA_PASSWORD): Agora's broker credentials")
	}
	return &producerapi.Client{BaseURL: *url, Username: *user, Password: *pass}, nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
