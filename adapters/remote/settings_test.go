package remote_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/adapters/remote"
)

func TestFactoryReportsEveryProblemAtOnce(t *testing.T) {
	_, err := remote.Factory().New(t.Context(), adapters.Config{
		Settings: adapters.MapSettings(map[string]any{
			"url": "ftp://user:hunter2@files", "timeout": "soon", "retries": 11,
			"tls": map[string]any{"cert_file": "/nonexistent.pem"}, "capabilities": []string{"update", "backup", "update"},
		}),
	})
	if err == nil {
		t.Fatal("New accepted invalid settings")
	}
	for _, want := range []string{"url: scheme", "must not hold a user or password", "tls: set, but url is not https",
		"timeout:", "retries: 11", "cert_file and key_file go together",
		`capabilities[1]: "backup" is not a capability of protocol v1; allowed: update, status`, `capabilities[2]: "update" is listed twice`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("the error repeats the password in the URL: %v", err)
	}
}

func TestUnparsableURLDoesNotLeakItsPassword(t *testing.T) {
	err := remote.Settings{URL: "http://user:hunter2@host:port", Secret: "s"}.Validate()
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("want an error without the password, got %v", err)
	}
}

func TestFactoryDecodesStrictly(t *testing.T) {
	for name, cfg := range map[string]adapters.Config{
		"offering": {Settings: adapters.MapSettings(map[string]any{"url": "http://x", "secret": "s", "secert": "typo"})},
		"plan": {Settings: adapters.MapSettings(map[string]any{"url": "http://x", "secret": "s"}),
			Plans: []adapters.PlanConfig{{Plan: testPlan, Settings: adapters.MapSettings(map[string]any{"size": 1})}}},
		"missing": {},
	} {
		if _, err := remote.Factory().New(t.Context(), cfg); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
	if _, err := remote.Factory().New(t.Context(), adapters.Config{Settings: adapters.MapSettings(map[string]any{
		"url": "https://files.example.com/agora/", "secret": "s", "timeout": "45s", "retries": 0, "producer": "files-team",
	})}); err != nil {
		t.Errorf("valid settings: %v", err)
	}
}

// TestMutualTLS: the alternative to signatures. The server trusts only
// client certificates from its CA; the client trusts only the server's
// CA, from files, as catalog.yml configures it.
func TestMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca, caKey := newCA(t)
	writePEM(t, filepath.Join(dir, "ca.pem"), "CERTIFICATE", ca.Raw)
	server := issue(t, ca, caKey, "adapter", x509.ExtKeyUsageServerAuth)
	client := issue(t, ca, caKey, "agora", x509.ExtKeyUsageClientAuth)
	writePEM(t, filepath.Join(dir, "client.pem"), "CERTIFICATE", client.Certificate[0])
	keyDER, err := x509.MarshalPKCS8PrivateKey(client.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, filepath.Join(dir, "client-key.pem"), "PRIVATE KEY", keyDER)

	pool := x509.NewCertPool()
	pool.AddCert(ca)
	srv := httptest.NewUnstartedServer(remote.Handler(&scripted{}, remote.HandlerOptions{Name: "mtls", SkipSignature: true}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{server}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert}
	srv.StartTLS()
	defer srv.Close()

	tlsFiles := &remote.TLSSettings{CAFile: filepath.Join(dir, "ca.pem"), CertFile: filepath.Join(dir, "client.pem"), KeyFile: filepath.Join(dir, "client-key.pem")}
	c := newClient(t, srv.URL, remote.Options{}, func(s *remote.Settings) { s.Secret, s.TLS = "", tlsFiles })
	if err := c.Ping(t.Context()); err != nil {
		t.Fatalf("Ping over mTLS: %v", err)
	}
	noCert := newClient(t, srv.URL, remote.Options{}, func(s *remote.Settings) {
		s.TLS = &remote.TLSSettings{CAFile: tlsFiles.CAFile}
	})
	if err := noCert.Ping(t.Context()); err == nil {
		t.Error("the server accepted a client without a certificate")
	}
	if _, err := remote.New(remote.Settings{URL: srv.URL, TLS: &remote.TLSSettings{CAFile: filepath.Join(dir, "client-key.pem")}}, remote.Options{}); err == nil ||
		!strings.Contains(err.Error(), "no PEM certificate") || !strings.Contains(err.Error(), "secret: required") {
		t.Errorf("want every problem at once, got %v", err)
	}
}

func newCA(t *testing.T) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return ca, key
}

func issue(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey, name string, usage x509.ExtKeyUsage) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func writePEM(t *testing.T, path, kind string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
