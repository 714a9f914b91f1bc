// Package tlsreload serves the broker's TLS from certificate files that
// change under it: a renewed certificate (cert-manager, a Kubernetes
// Secret, a cron job) is picked up within seconds or on SIGHUP, and every
// new connection gets it without a restart. It can require client
// certificates (mTLS) signed by a CA of the operator's choosing.
//
// What it must never do: serve a half-replaced pair. A key and a
// certificate that do not match (one file written, the other not yet)
// leave the previous pair in service, and the problem is logged once.
// It never logs key material.
package tlsreload

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// Config names the files and the policy.
type Config struct {
	CertFile, KeyFile string
	// ClientCAFile, when set, asks clients for a certificate signed by one
	// of its CAs; RequireClientCert refuses a connection without one
	// (otherwise a certificate is verified only when given).
	ClientCAFile      string
	RequireClientCert bool
	// MinVersion is tls.VersionTLS12 (the default, and the least allowed)
	// or tls.VersionTLS13.
	MinVersion uint16
	// Logger hears about reloads and failed ones; nil discards.
	Logger *slog.Logger
}

// Reloader holds the TLS configuration in force and replaces it when the
// files change.
type Reloader struct {
	cfg Config
	log *slog.Logger

	mu      sync.RWMutex
	current *tls.Config
	loaded  files // the contents current was built from
	failed  files // the contents that last failed, so a failure is logged once
}

// files are the contents of the three files.
type files struct{ cert, key, ca []byte }

func (f files) equal(o files) bool {
	return bytes.Equal(f.cert, o.cert) && bytes.Equal(f.key, o.key) && bytes.Equal(f.ca, o.ca)
}

// New loads the files once; an error names each file's problem.
func New(cfg Config) (*Reloader, error) {
	if cfg.MinVersion < tls.VersionTLS12 {
		cfg.MinVersion = tls.VersionTLS12
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Reloader{cfg: cfg, log: log}
	f, err := r.read()
	if err != nil {
		return nil, err
	}
	tc, err := r.build(f)
	if err != nil {
		return nil, err
	}
	r.current, r.loaded = tc, f
	return r, nil
}

// TLSConfig is the configuration to serve with: every handshake takes the
// one in force at that moment.
func (r *Reloader) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion: r.cfg.MinVersion,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			r.mu.RLock()
			defer r.mu.RUnlock()
			return r.current, nil
		},
	}
}

// Leaf is the certificate in force, for logs and tests.
func (r *Reloader) Leaf() *x509.Certificate {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.current.Certificates[0].Leaf
}

// Reload reads the files and puts them in force if they changed and make
// a valid configuration; otherwise the previous one stays. It reports
// whether anything changed.
func (r *Reloader) Reload() (bool, error) {
	f, err := r.read()
	if err != nil {
		return false, err
	}
	r.mu.RLock()
	same := f.equal(r.loaded)
	r.mu.RUnlock()
	if same {
		return false, nil
	}
	tc, err := r.build(f)
	if err != nil {
		return false, err
	}
	r.mu.Lock()
	r.current, r.loaded, r.failed = tc, f, files{}
	r.mu.Unlock()
	return true, nil
}

// Run reloads every interval and whenever hup delivers, until ctx ends.
// A change is logged once; a failure once per new content of the files.
func (r *Reloader) Run(ctx context.Context, interval time.Duration, hup <-chan os.Signal) {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		signalled := false
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		case <-hup:
			signalled = true
		}
		changed, err := r.Reload()
		switch {
		case err != nil:
			r.logFailure(err, signalled)
		case changed:
			leaf := r.Leaf()
			r.log.Info("tls: certificate reloaded", "subject", leaf.Subject.String(), "not_after", leaf.NotAfter.UTC(), "serial", leaf.SerialNumber.String())
		case signalled:
			r.log.Info("tls: SIGHUP, certificate files unchanged")
		}
	}
}

func (r *Reloader) logFailure(err error, signalled bool) {
	f, _ := r.read()
	r.mu.Lock()
	repeat := f.equal(r.failed) && !signalled
	r.failed = f
	r.mu.Unlock()
	if !repeat {
		r.log.Error("tls: certificate files changed but cannot be used; still serving the previous certificate", "error", err)
	}
}

func (r *Reloader) read() (files, error) {
	var f files
	var errs []error
	readOne := func(what, path string) []byte {
		b, err := os.ReadFile(path)
		if err != nil {
			errs = append(errs, fmt.Errorf("tls %s: %w", what, err))
		}
		return b
	}
	f.cert = readOne("certificate", r.cfg.CertFile)
	f.key = readOne("key", r.cfg.KeyFile)
	if r.cfg.ClientCAFile != "" {
		f.ca = readOne("client CA", r.cfg.ClientCAFile)
	}
	return f, errors.Join(errs...)
}

func (r *Reloader) build(f files) (*tls.Config, error) {
	var errs []error
	pair, err := tls.X509KeyPair(f.cert, f.key)
	if err != nil {
		// The error never quotes key material.
		errs = append(errs, fmt.Errorf("tls certificate %s and key %s: %w", r.cfg.CertFile, r.cfg.KeyFile, err))
	}
	tc := &tls.Config{MinVersion: r.cfg.MinVersion, Certificates: []tls.Certificate{pair}}
	if r.cfg.ClientCAFile != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(f.ca) {
			errs = append(errs, fmt.Errorf("tls client CA %s: no PEM certificate in it", r.cfg.ClientCAFile))
		}
		tc.ClientCAs = pool
		tc.ClientAuth = tls.VerifyClientCertIfGiven
		if r.cfg.RequireClientCert {
			tc.ClientAuth = tls.RequireAndVerifyClientCert
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return tc, nil
}
