package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/agora-osb/agora/producers"
	"github.com/agora-osb/agora/producers/producerapi"
)

const producerUsage = `Usage: agora producer <command> [flags] [args]

  login --url URL --name NAME [--token TOKEN]
                          remember Agora's URL, your producer name and token
                          (token from --token, $AGORA_PRODUCER_TOKEN or stdin)
  register --url URL --name NAME --contact EMAIL [--namespace team-x-]
                          ask to become a producer; prints your token ONCE and logs in
  apply -f slice.yml      put your slice: validation, conformance gate, new version
  status                  your record, live offerings, pending versions, failures
  history                 every version of your slice, newest first
  restore VERSION         make an earlier version current again (re-checked)
  deprecate OFFERING PLAN stop new instances of a plan; existing ones keep working
  remove OFFERING         take an offering without instances out of the catalog
  instances [--limit N] [--cursor C]
                          your instances and bindings (never credentials); with
                          --limit or --cursor one page, and the cursor of the next
  operations [--failed]   latest operations, failures with their reasons

Every command takes -o json for scripts. The login is kept in
~/.config/agora/producer.json (mode 0600); $AGORA_URL, $AGORA_PRODUCER and
$AGORA_PRODUCER_TOKEN override it.
`

// producerLogin is the saved login of `agora producer login`.
type producerLogin struct {
	URL   string `json:"url"`
	Name  string `json:"name"`
	Token string `json:"token"`
}

// producerConfigPath is where the login lives: $AGORA_PRODUCER_CONFIG,
// else $XDG_CONFIG_HOME/agora/producer.json, else ~/.config/agora/producer.json.
func producerConfigPath() (string, error) {
	if p := os.Getenv("AGORA_PRODUCER_CONFIG"); p != "" {
		return p, nil
	}
	dir := os.Getenv("XDG_CONFIG_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("find your home directory: %w", err)
		}
		dir = filepath.Join(home, ".config")
	}
	return filepath.Join(dir, "agora", "producer.json"), nil
}

func saveLogin(l producerLogin) (string, error) {
	path, err := producerConfigPath()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", err
	}
	data, _ := json.MarshalIndent(l, "", "  ")
	// Write then rename, so a crash never leaves half a token; 0600
	// because the token is a credential.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o600); err != nil {
		return "", err
	}
	if err := os.Chmod(tmp, 0o600); err != nil {
		return "", err
	}
	return path, os.Rename(tmp, path)
}

func loadLogin() (producerLogin, error) {
	var l producerLogin
	path, err := producerConfigPath()
	if err != nil {
		return l, err
	}
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return l, err
	}
	if err == nil {
		if err := json.Unmarshal(data, &l); err != nil {
			return l, fmt.Errorf("%s: %w", path, err)
		}
	}
	if v := os.Getenv("AGORA_URL"); v != "" {
		l.URL = v
	}
	if v := os.Getenv("AGORA_PRODUCER"); v != "" {
		l.Name = v
	}
	if v := os.Getenv("AGORA_PRODUCER_TOKEN"); v != "" {
		l.Token = v
	}
	if l.URL == "" || l.Name == "" || l.Token == "" {
		return l, errors.New("not logged in: run `agora producer login --url URL --name NAME` (or set AGORA_URL, AGORA_PRODUCER, AGORA_PRODUCER_TOKEN)")
	}
	return l, nil
}

// parseArgs parses flags anywhere among the arguments, so that
// `deprecate db small -o json` works like `deprecate -o json db small`.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
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

func producerCmd(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, producerUsage)
		return nil
	}
	cmd, args := args[0], args[1:]
	fs := flag.NewFlagSet("producer "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	output := fs.String("o", "text", "output: text or json")

	switch cmd {
	case "login":
		url := fs.String("url", "", "Agora's URL")
		name := fs.String("name", "", "your producer name")
		token := fs.String("token", "", "your token (default: $AGORA_PRODUCER_TOKEN, else read from stdin)")
		if _, err := parseArgs(fs, args); err != nil {
			return err
		}
		if *token == "" {
			*token = os.Getenv("AGORA_PRODUCER_TOKEN")
		}
		if *token == "" {
			data, err := io.ReadAll(io.LimitReader(stdin, 4096))
			if err != nil {
				return err
			}
			*token = strings.TrimSpace(string(data))
		}
		if *url == "" || *name == "" || *token == "" {
			return errors.New("login needs --url, --name and a token")
		}
		c := &producerapi.Client{BaseURL: *url, Token: *token}
		st, err := c.Status(ctx, *name)
		if err != nil {
			return fmt.Errorf("checking the token: %w", err)
		}
		path, err := saveLogin(producerLogin{URL: *url, Name: *name, Token: *token})
		if err != nil {
			return err
		}
		return emit(stdout, *output, st, func(w io.Writer) {
			fmt.Fprintf(w, "logged in to %s as producer %s (%s); saved to %s\n", *url, *name, st.Producer.State, path)
		})
	case "register":
		url := fs.String("url", "", "Agora's URL")
		name := fs.String("name", "", "your producer name: lowercase letters, digits, hyphens")
		contact := fs.String("contact", "", "who to call when your service breaks")
		namespace := fs.String("namespace", "", "prefix of your offering names (default NAME-)")
		if _, err := parseArgs(fs, args); err != nil {
			return err
		}
		if *url == "" {
			return errors.New("register needs --url")
		}
		c := &producerapi.Client{BaseURL: *url}
		created, err := c.Register(ctx, producers.CreateRequest{Name: *name, Contact: *contact, Namespace: *namespace})
		if err != nil {
			return err
		}
		path, err := saveLogin(producerLogin{URL: *url, Name: created.Producer.Name, Token: created.Token})
		if err != nil {
			fmt.Fprintf(stderr, "could not save the login (%v): keep the token below\n", err)
		}
		return emit(stdout, *output, created, func(w io.Writer) {
			fmt.Fprintf(w, "registered producer %s (namespace %s): %s until the platform team approves you\n", created.Producer.Name, created.Producer.Namespace, created.Producer.State)
			fmt.Fprintf(w, "your token, shown only this once:\n\n  %s\n\nlogin saved to %s\n", created.Token, path)
		})
	}

	var file, cursor string
	var failedOnly bool
	var limit int
	switch cmd {
	case "apply":
		fs.StringVar(&file, "f", "", "the slice file (YAML or JSON); - for stdin")
	case "instances":
		fs.StringVar(&cursor, "cursor", "", "go on from this page (printed at the end of the last)")
		fs.IntVar(&limit, "limit", 0, "instances per page (1-1000); without it and --cursor, every page")
	case "operations":
		fs.BoolVar(&failedOnly, "failed", false, "failures only")
	}
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	login, err := loadLogin()
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
	return fmt.Errorf("unknown command %q\n\n%s", cmd, producerUsage)
}

// limitFlag repeats --limit in a "more:" hint when it was given.
func limitFlag(limit int) string {
	if limit == 0 {
		return ""
	}
	return fmt.Sprintf(" --limit %d", limit)
}

// emit prints v as JSON (-o json) or through text.
func emit(w io.Writer, output string, v any, text func(io.Writer)) error {
	switch output {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case "text", "":
		text(w)
		return nil
	}
	return fmt.Errorf("-o %q: want text or json", output)
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
			fmt.Fprintf(w, "warning: %s\n", warning)
		}
	})
}

// printGate prints the gate's checks the way the conformance kit does.
func printGate(w io.Writer, g *producers.GateResult) {
	if g.Note != "" {
		fmt.Fprintf(w, "gate: %s\n", g.Note)
	}
	offering := ""
	for _, c := range g.Checks {
		if c.Offering != offering {
			offering = c.Offering
			fmt.Fprintf(w, "conformance of %s:\n", offering)
		}
		switch c.Result {
		case "pass":
			fmt.Fprintf(w, "  PASS %s (%dms)\n", c.Name, c.DurationMS)
		case "skip":
			fmt.Fprintf(w, "  SKIP %s: %s\n", c.Name, c.Detail)
		default:
			fmt.Fprintf(w, "  FAIL %s: %s\n", c.Name, c.Detail)
			if c.Hint != "" {
				fmt.Fprintf(w, "        hint: %s\n", c.Hint)
			}
		}
	}
	if len(g.Checks) > 0 {
		fmt.Fprintln(w, g.Summary)
	}
}

func printStatus(w io.Writer, st *producers.Status) {
	p := st.Producer
	fmt.Fprintf(w, "producer   %s (%s)\ncontact    %s\nnamespace  %s\nlive       v%d\n", p.Name, p.State, p.Contact, p.Namespace, p.LiveVersion)
	if len(st.Pending) > 0 {
		fmt.Fprintf(w, "pending    %v\n", st.Pending)
	}
	fmt.Fprintf(w, "failures   %d latest operations failed (agora producer operations --failed)\n\n", st.Failures)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "OFFERING\tPLANS\tINSTANCES\tIN CATALOG")
	for _, o := range st.Offerings {
		var plans []string
		for _, pl := range o.Plans {
			if pl.Deprecated {
				plans = append(plans, pl.Name+" (deprecated)")
			} else {
				plans = append(plans, pl.Name)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%t\n", o.Name, strings.Join(plans, ", "), o.Instances, o.InCatalog)
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
