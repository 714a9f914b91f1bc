// Command agora is Agora's one binary: the broker (serve), a development
// environment on embedded defaults (dev), and the producer and operator
// tools. main only wires things together; the work lives in packages.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `agora: one Open Service Broker for every producer team's services.

Usage:
  agora serve [-config agora.yml]   run the broker (config file plus AGORA_* environment)
  agora dev                         run everything locally on embedded defaults
  agora catalog check [-catalog catalog.yml] [-config agora.yml | -offline]
                                    validate a catalog and print every problem; with a
                                    Vault configured, check its vault: references resolve
  agora adapters                    list the adapters this binary offers
  agora adapter test --url URL --secret S
                                    run the conformance kit against a remote adapter
  agora producer login|register|apply|status|history|restore|deprecate|remove|instances|operations
                                    a producer's self-service (agora producer help)
  agora admin producers|slices|catalog
                                    the platform engineer's side (agora admin help)
  agora version

Run 'agora <command> -h' for the flags of a command.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = serve(ctx, args[1:], stdout, stderr)
	case "dev":
		err = dev(ctx, args[1:], stdout, stderr)
	case "catalog":
		err = catalogCmd(ctx, args[1:], stdout)
	case "adapters":
		err = listAdapters(stdout)
	case "adapter":
		err = adapterCmd(ctx, args[1:], stdout, stderr)
	case "producer":
		err = producerCmd(ctx, args[1:], os.Stdin, stdout, stderr)
	case "admin":
		err = adminCmd(ctx, args[1:], stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "agora", version)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "agora: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "agora %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"
