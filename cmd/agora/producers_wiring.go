package main

import (
	"context"
	"fmt"
	"time"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/adapters/conformance"
	"github.com/agora-osb/agora/adapters/conformance/credcheck"
	"github.com/agora-osb/agora/adapters/remote"
	"github.com/agora-osb/agora/broker/catalog"
	"github.com/agora-osb/agora/internal/app"
	"github.com/agora-osb/agora/producers"
)

// producerSelfService is what `agora serve` and `agora dev` give app.Run
// for producer self-service: catalog.yml as parsed (keeping only the
// offerings cat has, since dev leaves out those whose backend is down),
// the build options cat was built with, and the conformance gate.
func producerSelfService(path string, cat *catalog.Catalog) (*app.Producers, error) {
	reg, err := registry()
	if err != nil {
		return nil, err
	}
	file, err := catalog.ParseFile(path)
	if err != nil {
		return nil, err
	}
	kept := map[string]bool{}
	for _, o := range cat.Offerings() {
		kept[o.Name] = true
	}
	for i := range file.Producers {
		offs := file.Producers[i].Offerings[:0]
		for _, o := range file.Producers[i].Offerings {
			if kept[o.Name] {
				offs = append(offs, o)
			}
		}
		file.Producers[i].Offerings = offs
	}
	// Resolve is left nil: app resolves against Agora's own Vault.
	return &app.Producers{Base: []*catalog.File{file}, Build: buildOptions(reg, nil), Gate: remoteGate}, nil
}

// remoteGate runs the remote protocol's conformance kit against one
// offering of a producer's slice, with the request's first plan and that
// plan's provision schema (from which the kit derives invalid
// parameters); the gate and the canary send one plan per run
// (GateRequest.ForPlan), so every plan is judged with its own schema. A
// config that lists capabilities is checked against what the adapter
// declares; the report says what it declared, for a config that lists
// none.
//
// The kit verifies typed credentials by using them, through req.Dial:
// the egress policy that reaches the adapter also decides which hosts
// named in its credentials the kit may connect to, so a credential
// pointing at Agora's own Redis or Vault, or at a host gate.egress.allow
// does not name, fails its check with the rule's words and is never
// dialled.
func remoteGate(ctx context.Context, req producers.GateRequest) (conformance.Report, error) {
	opts := remote.ConformanceOptions{URL: req.URL, Secret: req.Secret, Dial: req.Dial, CleanupAttempts: req.CleanupAttempts,
		Verifiers: credcheck.Defaults(req.Dial)}
	var settings remote.Settings
	if err := adapters.MapSettings(req.Settings).Decode(&settings); err != nil {
		return conformance.Report{}, fmt.Errorf("config: %w", err)
	}
	opts.Capabilities = settings.Capabilities
	if req.Timeout != "" {
		d, err := time.ParseDuration(req.Timeout)
		if err != nil {
			return conformance.Report{}, fmt.Errorf("timeout %q is not a duration such as 30s", req.Timeout)
		}
		opts.Timeout = d
	}
	if len(req.Plans) > 0 {
		opts.Plan = req.Plans[0].Plan
		opts.ProvisionSchema = req.ProvisionSchemas[opts.Plan.ID]
	}
	return remote.Conformance(ctx, opts)
}
