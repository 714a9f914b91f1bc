// Command agora is Agora's one binary: the broker (serve), a development
// environment on embedded defaults (dev), and the producer and operator
// tools. main only wires things together; the work lives in packages.
package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return dispatch(ctx, commands(), args, streams{in: os.Stdin, out: stdout, errOut: stderr})
}
