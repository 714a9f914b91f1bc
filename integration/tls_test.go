package integration

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/agora-osb/agora/internal/testca"
)

var _ = Describe("agora serve over TLS with client certificates", func() {
	It("runs the OSB lifecycle for a platform with its certificate, refuses one without, and serves a renewed certificate without a restart", func(ctx SpecContext) {
		ca, err := testca.New("agora test CA")
		Expect(err).NotTo(HaveOccurred())
		platformCA, err := testca.New("platform client CA")
		Expect(err).NotTo(HaveOccurred())
		platform, err := platformCA.Client("cloud-controller")
		Expect(err).NotTo(HaveOccurred())

		dir, err := os.MkdirTemp(workDir, "tls-")
		Expect(err).NotTo(HaveOccurred())
		certFile, keyFile, clientCAFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"), filepath.Join(dir, "client-ca.crt")
		writeServerCert := func(serial int64) {
			c, k, err := ca.Server("agora", serial)
			Expect(err).NotTo(HaveOccurred())
			Expect(os.WriteFile(keyFile, k, 0o600)).To(Succeed())
			Expect(os.WriteFile(certFile, c, 0o600)).To(Succeed())
		}
		writeServerCert(1)
		Expect(os.WriteFile(clientCAFile, platformCA.PEM, 0o600)).To(Succeed())
		probePort := freePort()

		withCert := &tls.Config{RootCAs: testca.Pool(ca), Certificates: []tls.Certificate{platform}}
		b := StartBroker(ctx, BrokerOptions{Prefix: specPrefix(), ClientTLS: withCert, TLS: fmt.Sprintf(`tls:
  cert_file: %s
  key_file: %s
  client_ca_file: %s
probe_listen: 127.0.0.1:%d`, certFile, keyFile, clientCAFile, probePort)})
		serving := b.LogRecords("agora serving")
		Expect(serving).To(HaveLen(1))
		Expect(serving[0]).To(HaveKeyWithValue("tls", true))

		By("the whole OSB lifecycle over TLS, as the platform with its client certificate")
		osbLifecycle(ctx, b, vault.Addr, vaultPrefix())

		By("a client without a certificate is refused in the handshake")
		noCert := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: testca.Pool(ca)}}}
		_, err = noCert.Get(b.URL + "/v2/catalog")
		Expect(err).To(MatchError(ContainSubstring("certificate required")))

		By("a plain-HTTP client is refused too")
		plain := &http.Client{Timeout: 5 * time.Second}
		resp, err := plain.Get("http" + b.URL[len("https"):] + "/v2/catalog")
		if err == nil {
			Expect(resp.StatusCode).To(Equal(http.StatusBadRequest))
			resp.Body.Close()
		}

		By("the kubelet's plain probe address answers /readyz, and nothing else")
		probe := fmt.Sprintf("http://127.0.0.1:%d", probePort)
		resp, err = plain.Get(probe + "/readyz")
		Expect(err).NotTo(HaveOccurred())
		resp.Body.Close()
		Expect(resp.StatusCode).To(Equal(http.StatusOK))
		resp, err = plain.Get(probe + "/v2/catalog")
		Expect(err).NotTo(HaveOccurred())
		resp.Body.Close()
		Expect(resp.StatusCode).To(Equal(http.StatusNotFound))

		By("a renewed certificate, announced with SIGHUP, is served to new connections while serving")
		serial := func() int64 {
			tr := &http.Transport{TLSClientConfig: withCert, DisableKeepAlives: true}
			defer tr.CloseIdleConnections()
			resp, err := (&http.Client{Timeout: 5 * time.Second, Transport: tr}).Get(b.URL + "/healthz")
			Expect(err).NotTo(HaveOccurred())
			defer resp.Body.Close()
			return resp.TLS.PeerCertificates[0].SerialNumber.Int64()
		}
		Expect(serial()).To(Equal(int64(1)))
		writeServerCert(2)
		Expect(b.cmd.Process.Signal(syscall.SIGHUP)).To(Succeed())
		Eventually(serial).WithTimeout(10 * time.Second).WithPolling(100 * time.Millisecond).Should(Equal(int64(2)))
		Expect(b.OSB.Catalog().Status).To(Equal(http.StatusOK))
		Expect(b.LogRecords("tls: certificate reloaded")).NotTo(BeEmpty())
		Expect(b.Log()).NotTo(ContainSubstring("PRIVATE KEY"))
	})
})
