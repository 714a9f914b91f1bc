package catalog

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"
)

// UpstreamSpec names an existing OSB broker whose catalog a producer
// brings into Agora instead of writing offerings by hand.
type UpstreamSpec struct {
	// URL is the upstream broker's base URL (the part before /v2/...).
	URL      string `yaml:"url"`
	Username string `yaml:"username"`
	// Password is usually a vault reference; Build resolves it for the
	// importer and again (from its cache) in every imported offering's
	// config, so no plain secret has to sit in catalog.yml.
	Password string `yaml:"password"`
	// APIVersion is the X-Broker-API-Version Agora sends upstream; the
	// importer picks a default when it is empty.
	APIVersion string `yaml:"api_version"`
	// Timeout bounds each call to the upstream (a Go duration); the
	// importer picks a default when it is empty.
	Timeout string `yaml:"timeout"`
}

// ImportRequest is what an Importer gets for one producer's upstream.
type ImportRequest struct {
	// Producer is the name of the producer that owns the upstream.
	Producer string
	// Upstream is the section as written: its Password may still be a
	// vault reference. Put it, not the resolved Password below, into the
	// offerings' config: Build resolves it there like any config value,
	// so the secret never sits in a spec.
	Upstream UpstreamSpec
	// Password is Upstream.Password with a vault reference resolved, for
	// fetching the upstream's catalog.
	Password string
}

// Importer fetches an upstream broker's catalog and returns one
// OfferingSpec per upstream offering, in the upstream's order. It leaves
// IDs empty, so Build derives them from the producer and the names, and
// sets Adapter and Config so that the adapter forwards requests upstream.
// Build validates the specs like offerings written by hand. An error is
// reported at the producer's `upstream` field, one line per line of its
// text, so it must name the upstream and never contain a secret.
type Importer func(ctx context.Context, req ImportRequest) ([]OfferingSpec, error)

// importTimeout is a safety net: a hung importer must not hang startup.
// The importer bounds its own calls with the upstream's timeout.
const importTimeout = 2 * time.Minute

// producerKey names one producer of one source while Build runs.
type producerKey struct {
	file *File
	at   int
}

// importJob is one upstream's import: the request, and what came back.
type importJob struct {
	req   ImportRequest
	specs []OfferingSpec
	err   error
}

// importUpstreams checks every `upstream:` section, resolves its password
// and runs the importer for all of them at once. Problems are recorded
// now; the imported offerings are validated when their producer is.
func (b *builder) importUpstreams(files []*File) {
	b.imports = map[producerKey]*importJob{}
	for _, f := range files {
		if f == nil {
			continue
		}
		for pi := range f.Producers {
			p := &f.Producers[pi]
			if p.Upstream == nil {
				continue
			}
			if job := b.upstreamJob(f, p, fmt.Sprintf("producers[%d].upstream", pi)); job != nil {
				b.imports[producerKey{f, pi}] = job
			}
		}
	}
	if len(b.imports) == 0 || b.pure {
		return // Check calls nobody: an upstream's offerings wait for Build
	}
	ctx, cancel := context.WithTimeout(b.ctx, importTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, job := range b.imports {
		wg.Go(func() { job.specs, job.err = b.runImport(ctx, job.req) })
	}
	wg.Wait()
}

// upstreamJob validates one `upstream:` section; nil when it cannot be
// imported (the problems are already reported).
func (b *builder) upstreamJob(f *File, p *Producer, path string) *importJob {
	up := p.Upstream
	ok := true
	if len(p.Offerings) > 0 {
		b.fail(f, path, "a producer lists its offerings or imports them from an upstream broker, not both: "+
			"move the hand-written offerings to a producer of their own")
		ok = false
	}
	if !b.checkString(f, path+".url", up.URL, true, nil, "") {
		ok = false
	}
	var errs []pathError
	password := b.secrets.onString(&errs)(path+".password", up.Password)
	if len(errs) > 0 {
		b.failAll(f, errs)
		ok = false
	}
	if b.opts.Import == nil && !b.pure {
		b.fail(f, path, "upstream brokers need an importer (BuildOptions.Import), and none is configured")
		ok = false
	}
	if !ok {
		return nil
	}
	return &importJob{req: ImportRequest{Producer: p.Name, Upstream: *up, Password: password}}
}

// runImport calls the importer. Like a factory, an importer's bug must not
// take the whole broker down at startup.
func (b *builder) runImport(ctx context.Context, req ImportRequest) (specs []OfferingSpec, err error) {
	defer func() {
		if r := recover(); r != nil {
			specs, err = nil, fmt.Errorf("importer panicked: %v", r)
		}
	}()
	return b.opts.Import(ctx, req)
}

// imported validates the offerings an upstream brought, under the path
// "producers[i].upstream.services[j]" (j counts the upstream's offerings),
// so a collision names the upstream as its source.
func (b *builder) imported(f *File, p *Producer, pi int, path string) {
	job := b.imports[producerKey{f, pi}]
	if job == nil || b.pure {
		return // already reported, or Check, which imports nothing
	}
	upPath := path + ".upstream"
	if job.err != nil {
		for _, line := range strings.Split(job.err.Error(), "\n") {
			if line = strings.TrimSpace(line); line != "" {
				b.fail(f, upPath, "%s", b.secrets.scrub(line))
			}
		}
		return
	}
	if len(job.specs) == 0 {
		// Not an error: a broker may legitimately offer nothing yet. But
		// an empty import usually means a wrong URL, so say so.
		b.logger.Warn("upstream broker offers no services", "producer", p.Name, "url", job.req.Upstream.URL)
	}
	for j := range job.specs {
		b.offering(f, p, fmt.Sprintf("%s.services[%d]", upPath, j), &job.specs[j])
	}
}
