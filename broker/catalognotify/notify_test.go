package catalognotify_test

import (
	"context"
	"crypto/hmac"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/agora-osb/agora/adapters/adaptertest"
	"github.com/agora-osb/agora/broker/catalog"
	"github.com/agora-osb/agora/broker/catalognotify"
	"github.com/agora-osb/agora/broker/redisstore"
)

const secret = "a-shared-secret-of-enough-length"

// build returns a catalog of the data team's offerings: cache with the
// given plans, and queue when withQueue.
func build(t *testing.T, plans []string, withQueue bool) *catalog.Catalog {
	t.Helper()
	var b strings.Builder
	b.WriteString("producers:\n  - name: data-team\n    contact: data@example.com\n    offerings:\n")
	b.WriteString("      - name: cache\n        description: A cache.\n        adapter: memory\n        plans:\n")
	for _, p := range plans {
		b.WriteString("          - {name: " + p + ", description: " + p + ".}\n")
	}
	if withQueue {
		b.WriteString("      - name: queue\n        description: A queue.\n        adapter: memory\n        plans:\n          - {name: small, description: Small.}\n")
	}
	return adaptertest.MemCatalog(t, b.String())
}

// receiver records verified deliveries and answers with the statuses it
// is given, then 200.
type receiver struct {
	mu       sync.Mutex
	statuses []int
	events   []catalognotify.Event
	attempts int
	// failed, when set, runs on each failure it answers.
	failed func()
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.attempts++
	want := catalognotify.Sign(secret, req.Header.Get(catalognotify.HeaderTimestamp), body)
	if !hmac.Equal([]byte(want), []byte(req.Header.Get(catalognotify.HeaderSignature))) || req.Header.Get(catalognotify.HeaderEvent) != catalognotify.EventCatalogChanged {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if len(r.statuses) > 0 {
		status := r.statuses[0]
		r.statuses = r.statuses[1:]
		if r.failed != nil {
			r.failed()
		}
		w.WriteHeader(status)
		return
	}
	var ev catalognotify.Event
	if err := json.Unmarshal(body, &ev); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	r.events = append(r.events, ev)
}

func (r *receiver) got() ([]catalognotify.Event, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]catalognotify.Event(nil), r.events...), r.attempts
}

// current is a catalog in force that the test swaps.
type current struct {
	mu  sync.Mutex
	gen int64
	cat *catalog.Catalog
}

func (c *current) set(cat *catalog.Catalog) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.cat = cat
}

func (c *current) get() (int64, *catalog.Catalog) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen, c.cat
}

func newNotifier(t *testing.T, url string, rdb redis.UniversalClient, cur *current) *catalognotify.Notifier {
	t.Helper()
	n, err := catalognotify.New(catalognotify.Config{
		URL: url, Secret: secret, Store: redisstore.NewCatalogNotices(rdb, "agora"), Current: cur.get,
		Backoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func setup(t *testing.T, rcv *receiver) (string, redis.UniversalClient) {
	t.Helper()
	srv := httptest.NewServer(rcv)
	t.Cleanup(srv.Close)
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	return srv.URL, rdb
}

// TestAChangeIsAnnouncedOnceWithWhatChanged: the first catalog is the
// baseline; a new plan and a new offering then come in one signed event;
// the same catalog again announces nothing; a removal is announced.
func TestAChangeIsAnnouncedOnceWithWhatChanged(t *testing.T) {
	rcv := &receiver{}
	url, rdb := setup(t, rcv)
	cur := &current{}
	cur.set(build(t, []string{"small"}, false))
	n := newNotifier(t, url, rdb, cur)
	ctx := context.Background()

	if err := n.Check(ctx); err != nil {
		t.Fatal(err)
	}
	if events, attempts := rcv.got(); attempts != 0 {
		t.Fatalf("the baseline was announced: %+v", events)
	}
	cur.set(build(t, []string{"small", "large"}, true))
	for range 2 {
		if err := n.Check(ctx); err != nil {
			t.Fatal(err)
		}
	}
	events, _ := rcv.got()
	if len(events) != 1 {
		t.Fatalf("%d events for one change, want 1: %+v", len(events), events)
	}
	ev := events[0]
	if len(ev.Added) != 1 || ev.Added[0].Name != "queue" || ev.Added[0].Producer != "data-team" || len(ev.Added[0].Plans) != 1 {
		t.Errorf("added %+v, want the queue offering with its plan", ev.Added)
	}
	if len(ev.Changed) != 1 || len(ev.Changed[0].PlansAdded) != 1 || ev.Changed[0].PlansAdded[0].Name != "large" {
		t.Errorf("changed %+v, want cache with plan large added", ev.Changed)
	}
	if ev.Generation != 2 || ev.PreviousGeneration != 1 {
		t.Errorf("generations %d after %d, want 2 after 1", ev.Generation, ev.PreviousGeneration)
	}

	cur.set(build(t, []string{"small"}, false))
	if err := n.Check(ctx); err != nil {
		t.Fatal(err)
	}
	events, _ = rcv.got()
	if len(events) != 2 || len(events[1].Removed) != 1 || events[1].Removed[0].Name != "queue" ||
		len(events[1].Changed) != 1 || len(events[1].Changed[0].PlansRemoved) != 1 {
		t.Errorf("the removal was announced as %+v", events[1:])
	}
}

// TestAFailingReceiverGetsTheLatestChangeOnceItRecovers: the receiver
// fails; the notifier retries with backoff and, meanwhile, the catalog
// changes again: the receiver, once back, gets one event with both.
func TestAFailingReceiverGetsTheLatestChangeOnceItRecovers(t *testing.T) {
	rcv := &receiver{statuses: []int{http.StatusInternalServerError, http.StatusBadGateway}}
	url, rdb := setup(t, rcv)
	cur := &current{}
	cur.set(build(t, []string{"small"}, false))
	n := newNotifier(t, url, rdb, cur)
	ctx := context.Background()
	if err := n.Check(ctx); err != nil {
		t.Fatal(err)
	}
	cur.set(build(t, []string{"small", "large"}, false))
	// While the receiver is down, the producer applies again.
	third := build(t, []string{"small", "large"}, true)
	rcv.failed = func() { cur.set(third) }
	if err := n.Check(ctx); err != nil {
		t.Fatal(err)
	}
	events, attempts := rcv.got()
	if attempts != 3 || len(events) != 1 {
		t.Fatalf("%d attempts, %d events: want retries and one event", attempts, len(events))
	}
	if len(events[0].Added) != 1 || len(events[0].Changed) != 1 {
		t.Errorf("the event after recovery %+v does not carry both changes", events[0])
	}
}

// TestReplicasAnnounceAChangeOnce: two replicas see the same change at
// the same moment; the receiver hears of it once.
func TestReplicasAnnounceAChangeOnce(t *testing.T) {
	rcv := &receiver{}
	url, rdb := setup(t, rcv)
	cur := &current{}
	cur.set(build(t, []string{"small"}, false))
	a, b := newNotifier(t, url, rdb, cur), newNotifier(t, url, rdb, cur)
	ctx := context.Background()
	if err := a.Check(ctx); err != nil {
		t.Fatal(err)
	}
	cur.set(build(t, []string{"small", "large"}, false))
	var wg sync.WaitGroup
	for _, n := range []*catalognotify.Notifier{a, b} {
		wg.Go(func() {
			if err := n.Check(ctx); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	// The replica that lost the lease may not have seen it recorded yet.
	for _, n := range []*catalognotify.Notifier{a, b} {
		if err := n.Check(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if events, _ := rcv.got(); len(events) != 1 {
		t.Errorf("%d events from two replicas, want 1", len(events))
	}
}
