package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"runtime/debug"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/agora-osb/agora"
	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/adapters/conformance"
	"github.com/agora-osb/agora/adapters/conformance/credcheck"
	"github.com/agora-osb/agora/adapters/remote"
	"github.com/agora-osb/agora/internal/devvault"
	"github.com/agora-osb/agora/internal/scaffold"
)

// adapterCmd is the producer's tool for remote adapters. It exists so a
// producer can prove her adapter conforms on her own machine, before she
// registers it, with nothing but the agora binary.
func adapterCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	// The command table (commands.go) passes only commands it knows.
	if len(args) == 0 {
		return usageError("usage: agora adapter init|test")
	}
	switch args[0] {
	case "init":
		return adapterInit(args[1:], stdout, stderr)
	case "test":
		return adapterTest(ctx, args[1:], stdout, stderr)
	}
	return usageError("unknown command %q", args[0])
}

// adapterInitOptions are agora adapter init's flags.
type adapterInitOptions struct {
	lang, offering, module, checkout, output *string
	force                                    *bool
}

func adapterInitFlags(fs *flag.FlagSet) adapterInitOptions {
	return adapterInitOptions{
		lang:     fs.String("lang", "", "the project's language: "+strings.Join(scaffold.Languages(), ", ")+" (required)"),
		offering: fs.String("offering", "", "the offering's name in slice.yml (default: your producer name, from $AGORA_PRODUCER or your login, and DIR's name)"),
		force:    fs.Bool("force", false, "write into a directory that is not empty, replacing the files init writes (each one is named)"),
		module:   fs.String("module", "", "go: the project's module path (default DIR's name)"),
		checkout: fs.String("agora-module", "", "go: a local checkout of Agora for go.mod's replace directive (default: the checkout around the current directory, if any)"),
		output:   outputFlag(fs),
	}
}

// adapterInit makes the producer's first step a command: a project that
// runs and passes the kit before she has written a line.
func adapterInit(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("adapter init")
	o := adapterInitFlags(fs)
	lang, offering, force, module, checkout := o.lang, o.offering, o.force, o.module, o.checkout
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError("name one directory to write the project into: agora adapter init --lang python|node|go [flags] DIR")
	}
	dir := pos[0]
	opts := scaffold.Options{Lang: *lang, Dir: dir, Offering: *offering, Producer: producerName(), Module: *module,
		AgoraCheckout: *checkout, AgoraVersion: releaseVersion()}
	if *lang == "go" && opts.AgoraCheckout == "" {
		if cwd, err := os.Getwd(); err == nil {
			opts.AgoraCheckout, _ = devvault.FindRepoRoot(cwd)
		}
	}
	project, err := scaffold.Render(agora.Sources(), opts)
	if err != nil {
		return err
	}
	res, err := project.Write(dir, *force)
	if err != nil {
		return err
	}
	// What init did, as -o json prints it (never the secret: it is in
	// slice.yml and ./run's environment only).
	report := struct {
		Lang     string   `json:"lang"`
		Dir      string   `json:"dir"`
		Offering string   `json:"offering"`
		Written  []string `json:"written"`
		Replaced []string `json:"replaced"`
		Notes    []string `json:"notes"`
		Next     []string `json:"next_steps"`
	}{project.Lang, dir, project.Offering, res.Written, append([]string{}, res.Replaced...), append([]string{}, project.Notes...), project.NextSteps(dir)}
	return emit(stdout, *o.output, report, func(stdout io.Writer) {
		fmt.Fprintf(stdout, "wrote a %s adapter into %s: %s\n", project.Lang, dir, strings.Join(res.Written, ", "))
		if len(res.Replaced) > 0 {
			fmt.Fprintf(stdout, "replaced (they existed): %s\n", strings.Join(res.Replaced, ", "))
		}
		fmt.Fprintf(stdout, "slice.yml offers %q, with a new random secret shared by the adapter and Agora (Agora moves it into its Vault on apply)\n", project.Offering)
		for _, n := range project.Notes {
			fmt.Fprintf(stdout, "note: %s\n", n)
		}
		fmt.Fprintln(stdout, "next (README.md says the same):")
		for _, step := range report.Next {
			fmt.Fprintf(stdout, "  %s\n", step)
		}
	})
}

// producerName is the producer the offering's name defaults to: the one
// `agora producer` would act as, without requiring a complete login.
func producerName() string {
	if name := os.Getenv("AGORA_PRODUCER"); name != "" {
		return name
	}
	f, _, err := readLogins()
	if err != nil {
		return ""
	}
	login, _ := f.active()
	return login.Name
}

// releaseSemver is a released version of Agora, which a generated Go
// project can require without a local checkout; a development build's
// version (devel, or a pseudo-version) cannot be downloaded.
var releaseSemver = regexp.MustCompile(`^v\d+\.\d+\.\d+$`)

func releaseVersion() string {
	if info, ok := debug.ReadBuildInfo(); ok && releaseSemver.MatchString(info.Main.Version) {
		return info.Main.Version
	}
	return ""
}

// adapterTestOptions are agora adapter test's flags.
type adapterTestOptions struct {
	url, secret, planID, planName, output *string
	params, bindParams, invalidParams     *string
	slicePath                             *string
	caFile, certFile, keyFile             *string
	timeout                               *time.Duration
	verbose                               *bool
}

func adapterTestFlags(fs *flag.FlagSet) adapterTestOptions {
	return adapterTestOptions{
		url:           fs.String("url", "", "the adapter's base URL (required), such as http://127.0.0.1:9091"),
		secret:        fs.String("secret", "", "the secret shared with the adapter (default $AGORA_ADAPTER_SECRET, which keeps it out of shell history)"),
		planID:        fs.String("plan-id", "conformance-plan", "plan ID the adapter sees"),
		planName:      fs.String("plan-name", "default", "plan name the adapter sees"),
		params:        fs.String("params", "", "valid provision parameters, a JSON object"),
		bindParams:    fs.String("bind-params", "", "valid bind parameters, a JSON object"),
		invalidParams: fs.String("invalid-params", "", `provision parameters the adapter must reject, a JSON object such as '{"bogus":1}' (unset: derived from the --slice plan's parameters schema, else the check is skipped)`),
		slicePath:     fs.String("slice", "", "the slice.yml of the adapter's offering: the kit derives invalid parameters from the plan's parameters schema (the plan named --plan-name, else the first)"),
		timeout:       fs.Duration("timeout", 30*time.Second, "time limit of each call"),
		output:        outputFlag(fs),
		caFile:        fs.String("ca-file", "", "CA certificate (PEM) to trust for an https adapter"),
		certFile:      fs.String("cert-file", "", "client certificate (PEM) for mTLS"),
		keyFile:       fs.String("key-file", "", "client key (PEM) for mTLS"),
		verbose:       fs.Bool("v", false, "print progress and the adapter client's log to stderr"),
	}
}

func adapterTest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("adapter test")
	o := adapterTestFlags(fs)
	url, secret, planID, planName, output := o.url, o.secret, o.planID, o.planName, o.output
	params, bindParams, invalidParams, slicePath := o.params, o.bindParams, o.invalidParams, o.slicePath
	caFile, certFile, keyFile, timeout, verbose := o.caFile, o.certFile, o.keyFile, o.timeout, o.verbose
	if err := parseFlags(fs, args); err != nil {
		return err
	}

	var errs []error
	if fs.NArg() > 0 {
		errs = append(errs, fmt.Errorf("unexpected arguments %q", fs.Args()))
	}
	if *url == "" {
		errs = append(errs, errors.New("--url is required"))
	}
	if *output != "text" && *output != "json" {
		errs = append(errs, fmt.Errorf("-o %q: must be text or json", *output))
	}
	if *secret == "" {
		*secret = os.Getenv("AGORA_ADAPTER_SECRET")
	}
	opts := remote.ConformanceOptions{
		URL: *url, Secret: *secret, Plan: adapters.Plan{ID: *planID, Name: *planName}, Timeout: *timeout,
		// The producer runs this on her own machine: the kit may connect
		// wherever her adapter's credentials point.
		Verifiers: credcheck.Defaults(nil),
	}
	for _, p := range []struct {
		flag string
		raw  string
		into *map[string]any
	}{
		{"--params", *params, &opts.ProvisionParameters},
		{"--bind-params", *bindParams, &opts.BindParameters},
		{"--invalid-params", *invalidParams, &opts.InvalidProvisionParameters},
	} {
		if p.raw == "" {
			continue
		}
		// The value is not repeated: parameters may hold a password.
		if err := json.Unmarshal([]byte(p.raw), p.into); err != nil {
			errs = append(errs, fmt.Errorf("%s: not a JSON object: %w", p.flag, err))
		} else if *p.into == nil {
			errs = append(errs, fmt.Errorf("%s: not a JSON object", p.flag))
		}
	}
	if *slicePath != "" {
		schema, err := sliceSchema(*slicePath, *planName)
		if err != nil {
			errs = append(errs, fmt.Errorf("--slice: %w", err))
		}
		opts.ProvisionSchema = schema
	}
	if *caFile != "" || *certFile != "" || *keyFile != "" {
		opts.TLS = &remote.TLSSettings{CAFile: *caFile, CertFile: *certFile, KeyFile: *keyFile}
	}
	if *verbose {
		opts.Logf = func(format string, args ...any) { fmt.Fprintf(stderr, format+"\n", args...) }
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}

	report, err := remote.Conformance(ctx, opts)
	if err != nil {
		return err
	}
	if *output == "json" {
		if err := writeReportJSON(stdout, *url, report); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(stdout, "conformance of the remote adapter at %s\n", *url)
		report.Print(stdout)
		if report.Capabilities != nil {
			// Agora uses only what catalog.yml lists (default none).
			fmt.Fprintf(stdout, "declared capabilities: [%s]; list them in the offering's config.capabilities for Agora to use them\n",
				strings.Join(report.Capabilities, ", "))
		}
	}
	if report.Failed() {
		failed := 0
		for _, c := range report.Results {
			if c.Failed() {
				failed++
			}
		}
		return fmt.Errorf("%d of %d checks failed", failed, len(report.Results))
	}
	return nil
}

// sliceSchema reads the provision parameters schema of one plan of a
// slice: the plan called planName, else the first plan of the first
// offering. Nil when that plan has no schema.
func sliceSchema(path, planName string) (map[string]any, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	type plan struct {
		Name    string `yaml:"name"`
		Schemas struct {
			ServiceInstance struct {
				Create struct {
					Parameters map[string]any `yaml:"parameters"`
				} `yaml:"create"`
			} `yaml:"service_instance"`
		} `yaml:"schemas"`
	}
	var s struct {
		Offerings []struct {
			Plans []plan `yaml:"plans"`
		} `yaml:"offerings"`
	}
	if err := yaml.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var first *plan
	for _, o := range s.Offerings {
		for i, p := range o.Plans {
			if p.Name == planName {
				return p.Schemas.ServiceInstance.Create.Parameters, nil
			}
			if first == nil {
				first = &o.Plans[i]
			}
		}
	}
	if first == nil {
		return nil, fmt.Errorf("%s has no plans", path)
	}
	return first.Schemas.ServiceInstance.Create.Parameters, nil
}

// writeReportJSON is the shape a CI job or the registration gate reads.
func writeReportJSON(w io.Writer, url string, report conformance.Report) error {
	type check struct {
		Name       string `json:"name"`
		Result     string `json:"result"` // pass, fail or skip
		Detail     string `json:"detail,omitempty"`
		Hint       string `json:"hint,omitempty"`
		DurationMS int64  `json:"duration_ms"`
	}
	out := struct {
		URL     string  `json:"url"`
		Passed  bool    `json:"passed"`
		Summary string  `json:"summary"`
		Checks  []check `json:"checks"`
		// Capabilities are what the adapter declared; absent when it did
		// not answer GET /v1/capabilities.
		Capabilities []string `json:"capabilities,omitempty"`
		// Unverified are the credential types the kit could not use.
		Unverified []string `json:"unverified,omitempty"`
	}{URL: url, Passed: !report.Failed(), Summary: report.Summary(), Checks: []check{}, Capabilities: report.Capabilities,
		Unverified: report.Unverified}
	for _, c := range report.Results {
		out.Checks = append(out.Checks, check{Name: c.Name, Result: c.Outcome(), Detail: c.Detail, Hint: c.Hint, DurationMS: c.Duration.Milliseconds()})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
