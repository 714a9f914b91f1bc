package integration

import (
	"crypto/hmac"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/agora-osb/agora/adapters/remote"
	"github.com/agora-osb/agora/broker/catalognotify"
	"github.com/agora-osb/agora/examples/remote-adapter-go/files"
	"github.com/agora-osb/agora/producers"
	"github.com/agora-osb/agora/producers/producerapi"
)

var _ = Describe("the catalog webhook", func() {
	It("announces a producer's new offering once, signed, to a receiver that was down at first, while her apply never waits for it", func(ctx SpecContext) {
		var mu sync.Mutex
		var events []catalognotify.Event
		failures := 2 // the receiver is down for the first two deliveries
		receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			want := catalognotify.Sign(catalogWebhookSecret, r.Header.Get(catalognotify.HeaderTimestamp), body)
			if !hmac.Equal([]byte(want), []byte(r.Header.Get(catalognotify.HeaderSignature))) {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if failures > 0 {
				failures--
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			var ev catalognotify.Event
			Expect(json.Unmarshal(body, &ev)).To(Succeed())
			events = append(events, ev)
		}))
		DeferCleanup(receiver.Close)
		received := func() []catalognotify.Event {
			mu.Lock()
			defer mu.Unlock()
			return append([]catalognotify.Event(nil), events...)
		}

		secret := randomHex(16)
		adapter := httptest.NewServer(remote.Handler(&files.Adapter{Root: GinkgoT().TempDir()}, remote.HandlerOptions{Name: "files", Secret: secret}))
		DeferCleanup(adapter.Close)
		prefix := specPrefix()
		replicas := []*Broker{
			StartBroker(ctx, BrokerOptions{Name: "A", Prefix: prefix, CatalogWebhook: receiver.URL}),
			StartBroker(ctx, BrokerOptions{Name: "B", Prefix: prefix, CatalogWebhook: receiver.URL}),
		}

		By("a producer's slice goes live at once, though the receiver is down")
		team := "hook-" + randomHex(3)
		created, err := adminClient(replicas[0]).CreateProducer(ctx, producers.CreateRequest{Name: team, Contact: "hook@example.com", AutoApproveSlices: true})
		Expect(err).NotTo(HaveOccurred())
		she := &producerapi.Client{BaseURL: replicas[1].URL, Token: created.Token}
		start := time.Now()
		res, err := she.Apply(ctx, team, []byte(fmt.Sprintf(`offerings:
  - name: %s-files
    description: A directory per instance.
    adapter: remote
    config: {url: %q, secret: %q, capabilities: [update, inspect]}
    plans:
      - {name: small, description: Small.}
`, team, adapter.URL, secret)))
		Expect(err).NotTo(HaveOccurred())
		Expect(res.Status).To(Equal(producers.SliceLive), "%+v", res)
		applied := time.Since(start)

		By("the receiver, once up, hears of it once, from one of the two replicas")
		Eventually(received).WithTimeout(time.Minute).Should(HaveLen(1))
		Consistently(received).WithTimeout(3 * time.Second).Should(HaveLen(1))
		ev := received()[0]
		Expect(ev.Event).To(Equal(catalognotify.EventCatalogChanged))
		Expect(ev.Added).To(ConsistOf(And(HaveField("Name", team+"-files"), HaveField("Producer", team))))
		Expect(ev.Removed).To(BeEmpty())
		Expect(ev.Generation).To(BeNumerically(">", ev.PreviousGeneration))
		AddReportEntry("apply took", applied.String())
	}, SpecTimeout(3*time.Minute))
})
