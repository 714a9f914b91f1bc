package tlsreload

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agora-osb/agora/internal/syncbuf"
	"github.com/agora-osb/agora/internal/testca"
)

// testCA wraps testca.CA for tests that stop at the first failure.
type testCA struct{ *testca.CA }

func newCA(t *testing.T, name string) *testCA {
	t.Helper()
	ca, err := testca.New(name)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{ca}
}

func (ca *testCA) server(t *testing.T, cn string, serial int64) (certPEM, keyPEM []byte) {
	t.Helper()
	c, k, err := ca.Server(cn, serial)
	if err != nil {
		t.Fatal(err)
	}
	return c, k
}

func (ca *testCA) clientCert(t *testing.T, cn string) tls.Certificate {
	t.Helper()
	c, err := ca.Client(cn)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// fixture is a server on 127.0.0.1:0 over a Reloader whose files live in
// a directory of the test's own.
type fixture struct {
	dir, certFile, keyFile, caFile string
	reloader                       *Reloader
	url                            string
	log                            *syncbuf.Buffer
}

func write(t *testing.T, path string, data []byte) {
	t.Helper()
	// Write then rename, as Kubernetes swaps a Secret's files.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func serve(t *testing.T, ca *testCA, clientCA *testCA, require bool) *fixture {
	t.Helper()
	dir := t.TempDir()
	f := &fixture{dir: dir, certFile: filepath.Join(dir, "tls.crt"), keyFile: filepath.Join(dir, "tls.key"), log: &syncbuf.Buffer{}}
	c, k := ca.server(t, "agora-1", 1)
	write(t, f.certFile, c)
	write(t, f.keyFile, k)
	cfg := Config{CertFile: f.certFile, KeyFile: f.keyFile, Logger: slog.New(slog.NewJSONHandler(f.log, nil))}
	if clientCA != nil {
		f.caFile = filepath.Join(dir, "client-ca.crt")
		write(t, f.caFile, clientCA.PEM)
		cfg.ClientCAFile, cfg.RequireClientCert = f.caFile, require
	}
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.reloader = r
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			name := "anonymous"
			if len(r.TLS.PeerCertificates) > 0 {
				name = r.TLS.PeerCertificates[0].Subject.CommonName
			}
			_, _ = w.Write([]byte(name))
		}),
		ErrorLog: slog.NewLogLogger(slog.DiscardHandler, slog.LevelInfo),
	}
	go func() { _ = srv.Serve(tls.NewListener(ln, r.TLSConfig())) }()
	t.Cleanup(func() { _ = srv.Close() })
	f.url = "https://" + ln.Addr().String() + "/"
	return f
}

// get makes one request on a new connection and returns the serial of
// the server's certificate and the body.
func get(url string, roots *x509.CertPool, certs []tls.Certificate, maxVersion uint16) (int64, string, error) {
	tc := &tls.Config{RootCAs: roots, MaxVersion: maxVersion}
	if len(certs) > 0 {
		// Sent whatever CAs the server names: a client with the wrong
		// certificate must be refused, not quietly sent without one.
		tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &certs[0], nil }
	}
	tr := &http.Transport{TLSClientConfig: tc, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	_, _ = body.ReadFrom(resp.Body)
	return resp.TLS.PeerCertificates[0].SerialNumber.Int64(), body.String(), nil
}

func pool(cas ...*testCA) *x509.CertPool {
	p := x509.NewCertPool()
	for _, ca := range cas {
		p.AddCert(ca.Cert)
	}
	return p
}

func TestACertificateReplacedWhileServingIsServedToNewConnections(t *testing.T) {
	ca := newCA(t, "agora test CA")
	f := serve(t, ca, nil, false)
	hup := make(chan os.Signal, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.reloader.Run(ctx, time.Hour, hup); close(done) }()
	defer func() { cancel(); <-done }()

	if serial, _, err := get(f.url, pool(ca), nil, 0); err != nil || serial != 1 {
		t.Fatalf("first certificate: serial %d, %v", serial, err)
	}

	// A keep-alive connection opened before the swap.
	kept := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool(ca)}}
	defer kept.CloseIdleConnections()
	keptClient := &http.Client{Transport: kept, Timeout: 5 * time.Second}
	resp, err := keptClient.Get(f.url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	c, k := ca.server(t, "agora-2", 2)
	write(t, f.certFile, c)
	write(t, f.keyFile, k)
	hup <- os.Interrupt // stands for SIGHUP: any value on the channel
	waitFor(t, "the new certificate", func() bool {
		serial, _, err := get(f.url, pool(ca), nil, 0)
		return err == nil && serial == 2
	})
	if !strings.Contains(f.log.String(), "certificate reloaded") {
		t.Errorf("no reload line: %s", f.log.String())
	}
	// The connection opened before the swap still works.
	resp, err = keptClient.Get(f.url)
	if err != nil {
		t.Fatalf("the kept connection broke: %v", err)
	}
	resp.Body.Close()
}

func TestFilesAreWatchedWithoutASignal(t *testing.T) {
	ca := newCA(t, "agora test CA")
	f := serve(t, ca, nil, false)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.reloader.Run(ctx, 50*time.Millisecond, nil); close(done) }()
	defer func() { cancel(); <-done }()

	c, k := ca.server(t, "agora-3", 3)
	write(t, f.keyFile, k) // the key first: for a moment they do not match
	time.Sleep(300 * time.Millisecond)
	if serial, _, err := get(f.url, pool(ca), nil, 0); err != nil || serial != 1 {
		t.Fatalf("during a half-written swap: serial %d, %v (want the old certificate)", serial, err)
	}
	write(t, f.certFile, c)
	waitFor(t, "the new certificate", func() bool {
		serial, _, err := get(f.url, pool(ca), nil, 0)
		return err == nil && serial == 3
	})
	// The mismatch was seen several times but logged once, without key
	// material.
	if n := strings.Count(f.log.String(), "cannot be used"); n != 1 {
		t.Errorf("the half-written swap was logged %d times, want once:\n%s", n, f.log.String())
	}
	if strings.Contains(f.log.String(), "PRIVATE KEY") {
		t.Error("key material in the log")
	}
}

func TestClientCertificates(t *testing.T) {
	ca := newCA(t, "agora test CA")
	platformCA := newCA(t, "platform CA")
	strangerCA := newCA(t, "some other CA")
	platform := platformCA.clientCert(t, "cloud-controller")
	stranger := strangerCA.clientCert(t, "stranger")

	t.Run("required", func(t *testing.T) {
		f := serve(t, ca, platformCA, true)
		if _, body, err := get(f.url, pool(ca), []tls.Certificate{platform}, 0); err != nil || body != "cloud-controller" {
			t.Errorf("the platform's certificate: %q, %v", body, err)
		}
		if _, _, err := get(f.url, pool(ca), nil, 0); err == nil || !strings.Contains(err.Error(), "certificate required") {
			t.Errorf("no client certificate: %v, want the handshake refused", err)
		}
		if _, _, err := get(f.url, pool(ca), []tls.Certificate{stranger}, 0); err == nil {
			t.Error("a certificate from another CA was accepted")
		}
	})
	t.Run("verified if given", func(t *testing.T) {
		f := serve(t, ca, platformCA, false)
		if _, body, err := get(f.url, pool(ca), nil, 0); err != nil || body != "anonymous" {
			t.Errorf("no client certificate: %q, %v", body, err)
		}
		if _, _, err := get(f.url, pool(ca), []tls.Certificate{stranger}, 0); err == nil {
			t.Error("a certificate from another CA was accepted")
		}
	})
}

func TestTLSBelow12IsRefused(t *testing.T) {
	ca := newCA(t, "agora test CA")
	f := serve(t, ca, nil, false)
	if _, _, err := get(f.url, pool(ca), nil, tls.VersionTLS11); err == nil {
		t.Error("a TLS 1.1 client got in")
	}
	if _, _, err := get(f.url, pool(ca), nil, tls.VersionTLS12); err != nil {
		t.Errorf("TLS 1.2: %v", err)
	}
}

func TestNewNamesEveryBadFile(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := New(Config{CertFile: filepath.Join(dir, "missing.crt"), KeyFile: filepath.Join(dir, "missing.key"), ClientCAFile: notPEM})
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"missing.crt", "missing.key"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not name %s", err, want)
		}
	}
	ca := newCA(t, "ca")
	c, k := ca.server(t, "x", 1)
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	_ = os.WriteFile(certFile, c, 0o600)
	_ = os.WriteFile(keyFile, k, 0o600)
	_, err = New(Config{CertFile: certFile, KeyFile: keyFile, ClientCAFile: notPEM})
	if err == nil || !strings.Contains(err.Error(), "client CA "+notPEM) {
		t.Errorf("a client CA without certificates: %v", err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("%s: not within 10s", what)
}
