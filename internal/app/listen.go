package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/agora-osb/agora/broker/httpapi"
	"github.com/agora-osb/agora/internal/config"
	"github.com/agora-osb/agora/internal/tlsreload"
)

// certCheckInterval is how often the TLS files are looked at: a renewed
// certificate is in force within this, or at once on SIGHUP.
const certCheckInterval = 5 * time.Second

// listeners are what one replica serves on: the broker's address (TLS
// when configured) and, optionally, a plain-HTTP address for probes and
// scrapes.
type listeners struct {
	main, probe net.Listener
	// reloader is the TLS configuration in force; nil without TLS.
	reloader *tlsreload.Reloader
}

// openListeners listens on cfg.Listen (or uses given) and cfg.ProbeListen.
func openListeners(cfg config.Config, given net.Listener, log *slog.Logger) (*listeners, error) {
	l := &listeners{main: given}
	if cfg.TLS.Enabled() {
		minVersion := uint16(tls.VersionTLS12)
		if cfg.TLS.MinVersion == "1.3" {
			minVersion = tls.VersionTLS13
		}
		r, err := tlsreload.New(tlsreload.Config{
			CertFile: cfg.TLS.CertFile, KeyFile: cfg.TLS.KeyFile, ClientCAFile: cfg.TLS.ClientCAFile,
			RequireClientCert: cfg.TLS.ClientCAFile != "" && cfg.TLS.ClientAuth != "verify_if_given",
			MinVersion:        minVersion, Logger: log,
		})
		if err != nil {
			return nil, err
		}
		l.reloader = r
	}
	if l.main == nil {
		ln, err := net.Listen("tcp", cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("listen on %s: %w", cfg.Listen, err)
		}
		l.main = ln
	}
	if l.reloader != nil {
		l.main = tls.NewListener(l.main, l.reloader.TLSConfig())
	}
	if cfg.ProbeListen != "" {
		ln, err := net.Listen("tcp", cfg.ProbeListen)
		if err != nil {
			_ = l.main.Close()
			return nil, fmt.Errorf("listen on %s (probe_listen): %w", cfg.ProbeListen, err)
		}
		l.probe = ln
	}
	return l, nil
}

// close closes the listeners, for a start that fails after opening them.
func (l *listeners) close() {
	_ = l.main.Close()
	if l.probe != nil {
		_ = l.probe.Close()
	}
}

// describe is the startup line's account of the listeners.
func (l *listeners) describe() []any {
	attrs := []any{"addr", l.main.Addr().String(), "tls", l.reloader != nil}
	if l.reloader != nil {
		leaf := l.reloader.Leaf()
		attrs = append(attrs, "tls_subject", leaf.Subject.String(), "tls_not_after", leaf.NotAfter.UTC())
	}
	if l.probe != nil {
		attrs = append(attrs, "probe_addr", l.probe.Addr().String())
	}
	return attrs
}

// runReloads keeps the certificate current until ctx ends: every
// certCheckInterval, and on SIGHUP (which would otherwise end the
// process).
func (l *listeners) runReloads(ctx context.Context) {
	if l.reloader == nil {
		return
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	l.reloader.Run(ctx, certCheckInterval, hup)
}

// serve serves handler on the broker's listener and the probe surface on
// the probe listener until ctx ends, then shuts both down within grace.
// If one stops serving on its own, the other is shut down too.
func (l *listeners) serve(ctx context.Context, handler http.Handler, grace time.Duration, log *slog.Logger) error {
	// TLS handshake failures (a platform without the client certificate)
	// are the client's doing: INFO, in the process's log format.
	errorLog := slog.NewLogLogger(log.Handler(), slog.LevelInfo)
	srv := httpapi.NewServer(l.main.Addr().String(), handler)
	srv.ErrorLog = errorLog
	if l.probe == nil {
		return httpapi.Serve(ctx, srv, l.main, grace)
	}
	probeSrv := httpapi.NewServer(l.probe.Addr().String(), probesOnly(handler))
	probeSrv.ErrorLog = errorLog
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	var mainErr, probeErr error
	wg.Go(func() { defer stop(); mainErr = httpapi.Serve(ctx, srv, l.main, grace) })
	wg.Go(func() { defer stop(); probeErr = httpapi.Serve(ctx, probeSrv, l.probe, grace) })
	wg.Wait()
	return errors.Join(mainErr, probeErr)
}

// probesOnly lets through the paths a kubelet or a scraper needs, through
// the same edge (access log, metrics observer, the metrics credentials).
func probesOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/healthz", "/readyz", "/metrics":
			next.ServeHTTP(w, r)
		default:
			httpapi.WriteRawJSON(w, http.StatusNotFound, []byte(`{"error":"NotFound","description":"this address serves only /healthz, /readyz and /metrics"}`))
		}
	})
}
