package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/agora-osb/agora/producers"
	"github.com/agora-osb/agora/producers/producerapi"
)

// parseArgs parses flags anywhere among the arguments, so that
// `deprecate db small -o json` works like `deprecate -o json db small`.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := parseFlags(fs, args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return positional, nil
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
}

// producerOptions are the flags of agora producer's commands; each
// command declares only its own, and the rest stay at their zero value.
type producerOptions struct {
	output, url, name, token, contact, namespace, file, as, cursor *string
	failed                                                         *bool
	limit                                                          *int
}

func producerFlags(cmd string, fs *flag.FlagSet) producerOptions {
	o := producerOptions{output: outputFlag(fs), url: new(string), name: new(string), token: new(string),
		contact: new(string), namespace: new(string), file: new(string), as: new(string), failed: new(bool),
		cursor: new(string), limit: new(int)}
	switch cmd {
	case "login":
		o.url = fs.String("url", "", "Agora's URL")
		o.name = fs.String("name", "", "your producer name")
		o.token = fs.String("token", "", "your token (default: $AGORA_PRODUCER_TOKEN, else a prompt that does not echo it, or stdin when it is not a terminal)")
		o.as = fs.String("as", "", "switch to the saved login of this producer (--url picks among several Agoras); no token needed")
	case "register":
		o.url = fs.String("url", "", "Agora's URL")
		o.name = fs.String("name", "", "your producer name: lowercase letters, digits, hyphens")
		o.contact = fs.String("contact", "", "who to call when your service breaks")
		o.namespace = fs.String("namespace", "", "prefix of your offering names (default NAME-)")
	case "logins":
	default:
		o.as = fs.String("as", "", "act as this saved login for this command (agora producer logins lists them)")
	}
	switch cmd {
	case "apply":
		o.file = fs.String("f", "", "the slice file (YAML or JSON); - for stdin")
	case "instances":
		o.cursor = fs.String("cursor", "", "go on from this page (printed at the end of the last)")
		o.limit = fs.Int("limit", 0, "instances per page (1-1000); without it and --cursor, every page")
	case "operations":
		o.failed = fs.Bool("failed", false, "failures only")
	}
	return o
}

func producerCmd(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	// The command table (commands.go) passes only commands it knows.
	if len(args) == 0 {
		return usageError("usage: agora producer <command>")
	}
	cmd, args := args[0], args[1:]
	fs := newFlagSet("producer " + cmd)
	flags := producerFlags(cmd, fs)
	output := flags.output

	switch cmd {
	case "login":
		return producerLoginCmd(ctx, fs, flags, args, stdin, stdout, stderr)
	case "register":
		return producerRegisterCmd(ctx, fs, flags, args, stdout, stderr)
	case "logins":
		return producerLoginsCmd(fs, flags, args, stdout)
	}

	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	file, failedOnly, cursor, limit := *flags.file, *flags.failed, *flags.cursor, *flags.limit
	login, err := loadLogin(*flags.as)
	if err != nil {
		return err
	}
	c := &producerapi.Client{BaseURL: login.URL, Token: login.Token}
	name := login.Name
	want := func(n int, usage string) error {
		if len(pos) != n {
			return fmt.Errorf("usage: agora producer %s", usage)
		}
		return nil
	}

	switch cmd {
	case "apply":
		if file == "" || len(pos) != 0 {
			return errors.New("usage: agora producer apply -f slice.yml")
		}
		var data []byte
		if file == "-" {
			data, err = io.ReadAll(stdin)
		} else {
			data, err = os.ReadFile(file)
		}
		if err != nil {
			return err
		}
		res, err := c.Apply(ctx, name, data)
		return applyOutcome(stdout, *output, res, err)
	case "status":
		if err := want(0, "status"); err != nil {
			return err
		}
		st, err := c.Status(ctx, name)
		if err != nil {
			return err
		}
		return emit(stdout, *output, st, func(w io.Writer) { printStatus(w, st) })
	case "history":
		if err := want(0, "history"); err != nil {
			return err
		}
		vs, err := c.Versions(ctx, name)
		if err != nil {
			return err
		}
		return emit(stdout, *output, vs, func(w io.Writer) { printVersions(w, vs) })
	case "restore":
		if err := want(1, "restore VERSION"); err != nil {
			return err
		}
		v, err := strconv.Atoi(strings.TrimPrefix(pos[0], "v"))
		if err != nil {
			return fmt.Errorf("%q is not a version number", pos[0])
		}
		res, err := c.Restore(ctx, name, v)
		return applyOutcome(stdout, *output, res, err)
	case "deprecate":
		if err := want(2, "deprecate OFFERING PLAN"); err != nil {
			return err
		}
		res, err := c.Deprecate(ctx, name, pos[0], pos[1])
		return applyOutcome(stdout, *output, res, err)
	case "remove":
		if err := want(1, "remove OFFERING"); err != nil {
			return err
		}
		res, err := c.RemoveOffering(ctx, name, pos[0])
		return applyOutcome(stdout, *output, res, err)
	case "instances":
		if err := want(0, "instances [--limit N] [--cursor C]"); err != nil {
			return err
		}
		if cursor != "" || limit != 0 {
			// One page: what a script walking a million instances wants.
			page, err := c.InstancePage(ctx, name, cursor, limit)
			if err != nil {
				return err
			}
			return emit(stdout, *output, page, func(w io.Writer) {
				printInstances(w, page.Instances)
				if page.NextCursor != "" {
					fmt.Fprintf(w, "\nmore: agora producer instances --cursor %s%s\n", page.NextCursor, limitFlag(limit))
				}
			})
		}
		insts, err := c.Instances(ctx, name)
		if err != nil {
			return err
		}
		return emit(stdout, *output, insts, func(w io.Writer) { printInstances(w, insts) })
	case "operations":
		if err := want(0, "operations [--failed]"); err != nil {
			return err
		}
		ops, err := c.Operations(ctx, name, failedOnly)
		if err != nil {
			return err
		}
		return emit(stdout, *output, ops, func(w io.Writer) { printOperations(w, ops) })
	}
	return usageError("unknown command %q", cmd)
}

// limitFlag repeats --limit in a "more:" hint when it was given.
func limitFlag(limit int) string {
	if limit == 0 {
		return ""
	}
	return fmt.Sprintf(" --limit %d", limit)
}

// applyOutcome prints what an apply, restore, deprecate or remove did:
// the gate report, then the version and its state. A refused slice prints
// its problems or its failed gate and returns an error (exit status 1).
func applyOutcome(w io.Writer, output string, res *producers.ApplyResult, err error) error {
	var ae *producerapi.APIError
	if err != nil && errors.As(err, &ae) {
		if output == "json" {
			_ = emit(w, output, ae, nil)
			return fmt.Errorf("%d %s", ae.Status, ae.Description)
		}
		if ae.Gate != nil {
			printGate(w, ae.Gate)
			return fmt.Errorf("%s", ae.Description)
		}
		return err
	}
	if err != nil {
		return err
	}
	return emit(w, output, res, func(w io.Writer) {
		if res.Gate != nil {
			printGate(w, res.Gate)
		}
		fmt.Fprintf(w, "version %d: %s\n", res.Version, res.Status)
		if res.Status == producers.SlicePendingApproval {
			fmt.Fprintf(w, "the platform team approves it with: agora admin slices approve %s %d\n", res.Producer, res.Version)
		}
		for _, warning := range res.Warnings {
			if res.Gate != nil && strings.HasPrefix(warning, "not approved automatically: ") {
				continue // printed with the gate's report
			}
			fmt.Fprintf(w, "warning: %s\n", warning)
		}
	})
}

// printGate prints the gate's checks the way the conformance kit does.
func printGate(w io.Writer, g *producers.GateResult) {
	if g.Note != "" {
		fmt.Fprintf(w, "gate: %s\n", g.Note)
	}
	run := ""
	for _, c := range g.Checks {
		if where := checkWhere(c); where != run {
			run = where
			fmt.Fprintf(w, "conformance of %s:\n", run)
		}
		switch c.Result {
		case "pass":
			fmt.Fprintf(w, "  PASS %s (%dms)\n", c.Name, c.DurationMS)
		case "skip":
			fmt.Fprintf(w, "  SKIP %s: %s\n", c.Name, c.Detail)
		default:
			fmt.Fprintf(w, "  FAIL %s: %s\n", c.Name, c.Detail)
		}
		if c.Result != "pass" && c.Hint != "" {
			fmt.Fprintf(w, "        hint: %s\n", c.Hint)
		}
	}
	if len(g.Checks) > 0 {
		fmt.Fprintln(w, g.Summary)
	}
	printGateVerdict(w, g)
}

// checkWhere names the offering and plan a gate check ran with, as
// "offering plan small"; a report stored before the gate judged every
// plan has no plan.
func checkWhere(c producers.GateCheck) string {
	if c.Plan == "" {
		return c.Offering
	}
	return c.Offering + " plan " + c.Plan
}

func printStatus(w io.Writer, st *producers.Status) {
	p := st.Producer
	fmt.Fprintf(w, "producer   %s (%s)\ncontact    %s\nnamespace  %s\nlive       v%d\n", p.Name, p.State, p.Contact, p.Namespace, p.LiveVersion)
	if len(st.Pending) > 0 {
		fmt.Fprintf(w, "pending    %v\n", st.Pending)
	}
	fmt.Fprintf(w, "failures   %d latest operations failed (agora producer operations --failed)\n", st.Failures)
	printLatest(w, st.Latest)
	printHealth(w, st.Offerings)
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "OFFERING\tPLANS\tINSTANCES\tIN CATALOG\tHEALTH")
	for _, o := range st.Offerings {
		var plans []string
		for _, pl := range o.Plans {
			if pl.Deprecated {
				plans = append(plans, pl.Name+" (deprecated)")
			} else {
				plans = append(plans, pl.Name)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%t\t%s\n", o.Name, strings.Join(plans, ", "), o.Instances, o.InCatalog, healthWord(o.Health))
	}
	_ = tw.Flush()
}

func printVersions(w io.Writer, vs []producers.SliceVersion) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tSTATUS\tWHEN\tAUTHOR\tACTION\tGATE")
	for _, v := range vs {
		gate := ""
		if v.Gate != nil {
			gate = v.Gate.Summary
			if n := len(v.Gate.NotAutoApprovable); n > 0 {
				gate += fmt.Sprintf("; needs the platform engineer (%d reason(s): agora admin slices show)", n)
			}
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", v.Version, v.Status, v.CreatedAt.Format("2006-01-02 15:04:05"), v.Author, v.Action, gate)
	}
	_ = tw.Flush()
}

func printInstances(w io.Writer, insts []producers.InstanceView) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "INSTANCE\tOFFERING\tPLAN\tSTATE\tBINDINGS\tLAST OPERATION")
	for _, in := range insts {
		last := ""
		if in.LastOp != nil {
			last = in.LastOp.Kind + " " + in.LastOp.State
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", in.ID, in.Offering, in.Plan, in.State, len(in.Bindings), last)
	}
	_ = tw.Flush()
}

func printOperations(w io.Writer, ops []producers.OperationView) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "WHEN\tOFFERING\tINSTANCE\tBINDING\tKIND\tSTATE\tDESCRIPTION")
	for _, o := range ops {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", o.UpdatedAt.Format("2006-01-02 15:04:05"), o.Offering, o.InstanceID, o.BindingID, o.Kind, o.State, o.Description)
	}
	_ = tw.Flush()
}
