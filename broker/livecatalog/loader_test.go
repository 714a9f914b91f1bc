package livecatalog_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/broker/catalog"
	"github.com/agora-osb/agora/broker/livecatalog"
)

type sources struct {
	mu    sync.Mutex
	gen   int64
	files []*catalog.File
	err   error
}

func (s *sources) Generation(context.Context) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gen, nil
}

func (s *sources) LiveFiles(context.Context) ([]*catalog.File, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.files, s.err
}

func (s *sources) set(gen int64, files []*catalog.File, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gen, s.files, s.err = gen, files, err
}

type target struct {
	mu  sync.Mutex
	cat *catalog.Catalog
}

func (t *target) SetCatalog(c *catalog.Catalog) { t.mu.Lock(); t.cat = c; t.mu.Unlock() }
func (t *target) Catalog() *catalog.Catalog     { t.mu.Lock(); defer t.mu.Unlock(); return t.cat }

type closer struct{ closed chan struct{} }

func (closer) Provision(context.Context, adapters.ProvisionRequest) (adapters.ProvisionResult, error) {
	return adapters.ProvisionResult{}, nil
}
func (closer) Deprovision(context.Context, adapters.DeprovisionRequest) (adapters.DeprovisionResult, error) {
	return adapters.DeprovisionResult{}, nil
}
func (closer) Bind(context.Context, adapters.BindRequest) (adapters.BindResult, error) {
	return adapters.BindResult{}, nil
}
func (closer) Unbind(context.Context, adapters.UnbindRequest) (adapters.UnbindResult, error) {
	return adapters.UnbindResult{}, nil
}
func (c closer) Close() error { close(c.closed); return nil }

func file(t *testing.T, offerings ...string) *catalog.File {
	t.Helper()
	var b strings.Builder
	b.WriteString("producers:\n- name: p\n  contact: c\n  offerings:\n")
	for _, o := range offerings {
		b.WriteString("  - name: " + o + "\n    description: d\n    adapter: fake\n    plans:\n    - name: small\n      description: d\n")
	}
	f, err := catalog.ParseSource("test", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// waitFor polls cond; the loop's own interval is what is waited on, not
// a duration the test asserts.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestTheLoaderFollowsTheGenerationAndKeepsTheCatalogOnFailure(t *testing.T) {
	closes := make(chan chan struct{}, 10)
	reg, err := adapters.NewRegistry(adapters.Factory{Name: "fake", New: func(context.Context, adapters.Config) (adapters.Adapter, error) {
		c := closer{closed: make(chan struct{})}
		closes <- c.closed
		return c, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	src := &sources{}
	src.set(1, []*catalog.File{file(t, "one")}, nil)
	tgt := &target{}
	l := livecatalog.New(livecatalog.Config{Sources: src, Target: tgt, Build: catalog.BuildOptions{Registry: reg},
		Interval: time.Millisecond, Grace: time.Millisecond, RetryAfter: time.Millisecond})
	if err := l.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	first := tgt.Catalog()
	firstClosed := <-closes
	if _, ok := offering(first, "one"); !ok || l.Status().Generation != 1 {
		t.Fatalf("first build: status %+v", l.Status())
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go l.Run(ctx)

	// The generation moves: the replica rebuilds only what changed. The
	// unchanged offering keeps its adapter, open, past the grace period of
	// the catalog it came from.
	src.set(2, []*catalog.File{file(t, "one", "two")}, nil)
	waitFor(t, "generation 2", func() bool { return l.Status().Generation == 2 })
	if _, ok := offering(tgt.Catalog(), "two"); !ok {
		t.Fatal("the rebuilt catalog lacks the new offering")
	}
	one, _ := offering(first, "one")
	if kept, _ := offering(tgt.Catalog(), "one"); kept.Adapter != one.Adapter {
		t.Error("the unchanged offering got a new adapter")
	}
	if n := len(closes); n != 1 {
		t.Errorf("the rebuild built %d adapters, want 1 (the new offering's)", n)
	}
	<-closes

	// A rebuild that fails keeps the catalog in force, and is retried.
	second := tgt.Catalog()
	src.set(3, nil, errors.New("vault is down"))
	waitFor(t, "the failure to be reported", func() bool { return l.Status().LastError != "" })
	if tgt.Catalog() != second || l.Status().Generation != 2 {
		t.Fatal("a failed rebuild replaced the catalog")
	}
	src.set(3, []*catalog.File{file(t, "two", "three")}, nil)
	waitFor(t, "the retry", func() bool { return l.Status().Generation == 3 && l.Status().LastError == "" })
	if _, ok := offering(tgt.Catalog(), "three"); !ok {
		t.Fatal("the retried build lacks the new offering")
	}
	// The offering that left: its adapter is closed after the grace period,
	// once no catalog holds it.
	select {
	case <-firstClosed:
	case <-time.After(5 * time.Second):
		t.Fatal("the adapter of the offering that left was never closed")
	}
}

func offering(c *catalog.Catalog, name string) (*catalog.Offering, bool) {
	for _, o := range c.Offerings() {
		if o.Name == name {
			return o, true
		}
	}
	return nil, false
}
