// Command benchscale measures whether Agora's request paths stay flat from
// a thousand stored instances to a million (issue 10): `make bench-scale`.
//
// It starts everything it measures and nothing else: two redis-servers of
// its own on free loopback ports (never the shared database), the dev
// Vault, the secrets adapter served over the remote protocol for a
// producer, and two `agora serve` processes, one per Redis. It seeds one
// Redis with 1,000 instances and the other with 1,000,000 (each with a
// binding) through Agora's own store code, pipelined, with progress
// output. Then it measures every path on both sizes alternating request
// by request (the full walks page by page), so that a noisy machine hits
// both sizes alike, and prints p50 and p99 per size and one line per path
// in the form scripts read:
//
//	ratio <name> <1M p50 / 1k p50> goal <= 1.1 <met|NOT MET>
//
// plus each Agora's RSS, each Redis command's mean cost, and the longest
// Redis slowlog entries while it was measured (goal: nothing above 10 ms).
//
// Everything is torn down on exit, on an error and on SIGINT or SIGTERM;
// the child processes also die with the tool (Pdeathsig on Linux).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type options struct {
	sizes        []int
	rounds       int
	samples      int // per round, for the cheap paths
	vaultSamples int // per round, for paths that call Vault or PostgreSQL
	redisAddrs   []string
}

func main() {
	var o options
	sizes := flag.String("sizes", "1000,1000000", "the two instance counts to compare, small first")
	flag.IntVar(&o.rounds, "rounds", 3, "alternating rounds per path")
	flag.IntVar(&o.samples, "samples", 200, "requests per round and size for catalog, last_operation, GET instance and the listings' first pages (with 50 the first pages' p50 ratio moved by about 7% run to run)")
	flag.IntVar(&o.vaultSamples, "vault-samples", 80, "provisions, binds and deprovisions per round and size, secrets and postgres (each calls Vault or PostgreSQL; with 40 the p50 ratio of the secrets deprovision moved between 1.00 and 1.11 run to run)")
	redisAddrs := flag.String("redis", "", "two Redis addresses (comma-separated) to use instead of starting redis-servers; each must hold nothing but bench keys")
	flag.Parse()
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "benchscale: -sizes: %q is not a positive number\n", s)
			os.Exit(2)
		}
		o.sizes = append(o.sizes, n)
	}
	if len(o.sizes) != 2 {
		fmt.Fprintln(os.Stderr, "benchscale: -sizes takes exactly two counts")
		os.Exit(2)
	}
	if *redisAddrs != "" {
		o.redisAddrs = strings.Split(*redisAddrs, ",")
		if len(o.redisAddrs) != 2 {
			fmt.Fprintln(os.Stderr, "benchscale: -redis takes exactly two addresses")
			os.Exit(2)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	err := run(ctx, o)
	fmt.Printf("\nbenchscale: took %s\n", time.Since(start).Round(time.Second))
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchscale:", err)
		stop()
		os.Exit(1)
	}
}
