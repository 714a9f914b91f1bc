// Command remote-adapter-go is a complete Agora remote adapter: a
// directory per instance and a token per binding (package files), served
// over Agora's adapter protocol v1 by remote.Handler, which checks
// signatures and replays and maps errors to the protocol's answers.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/agora-osb/agora/adapters/remote"
	"github.com/agora-osb/agora/examples/remote-adapter-go/files"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:9092", "address to serve on")
	secret := flag.String("secret", os.Getenv("AGORA_ADAPTER_SECRET"), "secret shared with Agora (default $AGORA_ADAPTER_SECRET)")
	root := flag.String("root", "/tmp/agora-files", "directory that holds one directory per instance")
	flag.Parse()
	if *secret == "" {
		slog.Error("set -secret or AGORA_ADAPTER_SECRET")
		os.Exit(2)
	}
	if err := os.MkdirAll(*root, 0o700); err != nil {
		slog.Error("root", "error", err)
		os.Exit(1)
	}
	handler := remote.Handler(&files.Adapter{Root: *root}, remote.HandlerOptions{
		Name: "files-go", Version: "1.0.0", Secret: *secret, Logger: slog.Default(),
	})
	// Listen before saying where: with port 0 the system picks a free one.
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		slog.Error("listen (pick another address with -listen)", "error", err)
		os.Exit(1)
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown) // let calls in flight finish: Agora would repeat them anyway
	}()
	fmt.Printf("listening on http://%s\n", ln.Addr())
	slog.Info("serving Agora adapter protocol v1", "root", *root)
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		slog.Error("serve", "error", err)
		os.Exit(1)
	}
}
