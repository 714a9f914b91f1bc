# Agora's developer entry points. `make` alone prints this help.
SHELL := /bin/bash
GO ?= go
STATICCHECK_VERSION := v0.8.2
PKGS := ./...
# The deployment checks are a module of their own (Helm and Kubernetes
# stay out of Agora's go.mod).
DEPLOY_CHECK := deploy/check

.DEFAULT_GOAL := help

.PHONY: help
help: ## Show the targets
	@grep -hE '^[a-z][a-z-]*:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*## "}{printf "  make %-12s %s\n", $$1, $$2}'

.PHONY: fmt
fmt: ## Format the code (gofmt -w)
	gofmt -w $$(git ls-files '*.go')

.PHONY: vet
vet: ## go vet, and fail on unformatted files
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	cd $(DEPLOY_CHECK) && $(GO) vet ./...

.PHONY: lint
lint: vet ## vet plus staticcheck (pinned version)
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) $(PKGS)

.PHONY: devvault
devvault: ## Build (or reuse) the cached dev Vault binary
	$(GO) run ./tools/devvaultbuild

.PHONY: dev
dev: ## Run Agora locally on embedded defaults (same as: go run ./cmd/agora dev)
	$(GO) run ./cmd/agora dev

.PHONY: unit
unit: ## Unit tests only (miniredis and fakes; seconds)
	$(GO) test -short -count=1 $(PKGS)

.PHONY: integration
integration: devvault ## Integration suites: real Redis, real Vault, real backends
	$(GO) test -count=1 -timeout 30m ./integration/...

.PHONY: deploy-check
deploy-check: ## Lint, render and strictly validate the Helm chart; check the Dockerfile (no cluster, no Docker)
	cd $(DEPLOY_CHECK) && $(GO) test -count=1 ./...

.PHONY: test
test: vet devvault ## Everything: vet, unit tests, adapter tests against real servers, integration suites, deployment checks
	$(GO) test -count=1 -p 2 -timeout 40m $(PKGS)
	cd $(DEPLOY_CHECK) && $(GO) test -count=1 ./...

.PHONY: bench
bench: devvault ## The three benchmark ratios (catalog, last_operation, bind) against their floors; flags via ARGS='-cpuprofile=DIR ...'
	$(GO) run ./tools/bench $(ARGS)

.PHONY: bench-scale
bench-scale: devvault ## 1k vs 1M stored instances: p50/p99 of every OSB path and listing, ratios, RSS, slowlog (own Redis; minutes)
	$(GO) run ./tools/benchscale
