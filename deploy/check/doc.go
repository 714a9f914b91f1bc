// Package check proves Agora's deployment artefacts without a cluster or
// a Docker engine: the Helm chart (deploy/helm/agora) is linted and
// rendered with Helm's Go library, and every manifest it renders is
// decoded strictly into the Kubernetes API types (an unknown or
// misspelt field fails), then checked against what Agora needs (two
// replicas, probes on /healthz and /readyz, a disruption budget, a
// config agora serve accepts). The Dockerfile is parsed and its
// properties asserted (multi-stage, static build, non-root, no shell).
//
// It is a module of its own so Helm's and Kubernetes' dependencies stay
// out of Agora's binary and go.mod; `make test` runs it. It must never
// need a cluster, a registry or a Docker daemon.
package check
