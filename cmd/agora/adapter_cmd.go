package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/adapters/conformance"
	"github.com/agora-osb/agora/adapters/remote"
)

const adapterUsage = `Usage:
  agora adapter test --url URL --secret SECRET [flags]
      judge a remote adapter (protocol v1, docs/adapter-protocol.md): the
      protocol's own checks (capabilities, signatures, stale timestamps,
      replays) and the conformance kit, through the client Agora uses.
      Exits 1 when any check fails.

Run 'agora adapter test -h' for its flags.
`

// adapterCmd is the producer's tool for remote adapters. It exists so a
// producer can prove her adapter conforms on her own machine, before she
// registers it, with nothing but the agora binary.
func adapterCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, adapterUsage)
		return errors.New("missing subcommand")
	}
	switch args[0] {
	case "test":
		return adapterTest(ctx, args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, adapterUsage)
		return nil
	}
	fmt.Fprint(stderr, adapterUsage)
	return fmt.Errorf("unknown subcommand %q", args[0])
}

func adapterTest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("agora adapter test", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "", "the adapter's base URL (required), such as http://127.0.0.1:9091")
	secret := fs.String("secret", "", "the secret shared with the adapter (default $AGORA_ADAPTER_SECRET, which keeps it out of shell history)")
	planID := fs.String("plan-id", "conformance-plan", "plan ID the adapter sees")
	planName := fs.String("plan-name", "default", "plan name the adapter sees")
	params := fs.String("params", "", "valid provision parameters, a JSON object")
	bindParams := fs.String("bind-params", "", "valid bind parameters, a JSON object")
	invalidParams := fs.String("invalid-params", "", `provision parameters the adapter must reject, a JSON object such as '{"bogus":1}' (unset: check skipped)`)
	timeout := fs.Duration("timeout", 30*time.Second, "time limit of each call")
	output := fs.String("o", "text", "output: text or json")
	caFile := fs.String("ca-file", "", "CA certificate (PEM) to trust for an https adapter")
	certFile := fs.String("cert-file", "", "client certificate (PEM) for mTLS")
	keyFile := fs.String("key-file", "", "client key (PEM) for mTLS")
	verbose := fs.Bool("v", false, "print progress and the adapter client's log to stderr")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
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
	}{URL: url, Passed: !report.Failed(), Summary: report.Summary(), Checks: []check{}, Capabilities: report.Capabilities}
	for _, c := range report.Results {
		result := "pass"
		switch {
		case c.Skipped:
			result = "skip"
		case c.Failed():
			result = "fail"
		}
		out.Checks = append(out.Checks, check{Name: c.Name, Result: result, Detail: c.Detail, Hint: c.Hint, DurationMS: c.Duration.Milliseconds()})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
