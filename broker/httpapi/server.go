package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// NewServer wraps h in an *http.Server whose timeouts bound every stage of
// a request, so slow or stuck clients cannot pin connections.
// WriteTimeout is 90s because Cloud Foundry gives up on a broker after 60s:
// a request still running past that is answered for the log's sake, not
// the platform's.
func NewServer(addr string, h http.Handler) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      90 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
}

// Serve runs srv on ln until ctx is cancelled, then shuts down gracefully:
// the listener closes at once (new connections are refused) and in-flight
// requests get up to grace to finish. It returns nil after a clean
// shutdown, and an error if serving failed or grace ran out (in which case
// the remaining connections are closed).
func Serve(ctx context.Context, srv *http.Server, ln net.Listener, grace time.Duration) error {
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	select {
	case err := <-served:
		if errors.Is(err, http.ErrServerClosed) {
			return nil // someone else shut srv down; that is not a failure
		}
		return errorf("serving on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}

	// ctx is already done; shutdown needs its own deadline.
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		closeErr := srv.Close()
		return errorf("graceful shutdown did not finish within %s: %w", grace, errors.Join(err, closeErr))
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return errorf("serving on %s: %w", ln.Addr(), err)
	}
	return nil
}

// errorf keeps the package's error prefix in one place.
func errorf(format string, args ...any) error {
	return fmt.Errorf("httpapi: "+format, args...)
}
