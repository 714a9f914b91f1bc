package producers

import (
	"context"
	"encoding/json"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/agora-osb/agora/broker"
)

// memStore is Store in memory, for the service's table tests. It keeps
// the contract's atomicity with one mutex and deep copies (JSON), so a
// test cannot pass because the service changed a record it did not store.
type memStore struct {
	mu         sync.Mutex
	records    map[string]Record
	versions   map[string]map[int]SliceVersion
	seq        map[string]int
	generation int64
	locked     bool
}

func newMemStore() *memStore {
	return &memStore{records: map[string]Record{}, versions: map[string]map[int]SliceVersion{}, seq: map[string]int{}}
}

func clone[T any](v T) T {
	data, _ := json.Marshal(v)
	var out T
	_ = json.Unmarshal(data, &out)
	return out
}

func (m *memStore) Create(_ context.Context, rec Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.records[rec.Name]; ok {
		return Fail(ErrConflict, "producer %q already exists", rec.Name)
	}
	for _, r := range m.records {
		if strings.HasPrefix(r.Namespace, rec.Namespace) || strings.HasPrefix(rec.Namespace, r.Namespace) {
			return Fail(ErrConflict, "namespace %q overlaps producer %q's namespace", rec.Namespace, r.Name)
		}
	}
	m.records[rec.Name] = clone(rec)
	return nil
}

func (m *memStore) Get(_ context.Context, name string) (Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	rec, ok := m.records[name]
	if !ok {
		return Record{}, Fail(ErrNotFound, "producer %q does not exist", name)
	}
	return clone(rec), nil
}

func (m *memStore) List(context.Context) ([]Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Record, 0, len(m.records))
	for _, r := range m.records {
		out = append(out, clone(r))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (m *memStore) Update(_ context.Context, name string, fn UpdateFunc) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	rec, ok := m.records[name]
	if !ok {
		return Fail(ErrNotFound, "producer %q does not exist", name)
	}
	rec = clone(rec)
	versions := map[int]*SliceVersion{}
	for k, v := range m.versions[name] {
		v := clone(v)
		versions[k] = &v
	}
	changed, err := fn(&rec, versions)
	if err != nil {
		return err
	}
	m.records[name] = rec
	for _, v := range changed {
		m.putVersion(name, v)
	}
	return nil
}

func (m *memStore) putVersion(name string, v *SliceVersion) {
	if m.versions[name] == nil {
		m.versions[name] = map[int]SliceVersion{}
	}
	m.versions[name][v.Version] = clone(*v)
}

func (m *memStore) Versions(_ context.Context, name string) ([]*SliceVersion, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []*SliceVersion{}
	for _, v := range m.versions[name] {
		v := clone(v)
		out = append(out, &v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version > out[j].Version })
	return out, nil
}

func (m *memStore) Version(_ context.Context, name string, n int) (*SliceVersion, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.versions[name][n]
	if !ok {
		return nil, Fail(ErrNotFound, "producer %q has no slice version %d", name, n)
	}
	v = clone(v)
	return &v, nil
}

func (m *memStore) NextVersion(_ context.Context, name string) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.seq[name]++
	return m.seq[name], nil
}

func (m *memStore) PutVersion(_ context.Context, name string, v *SliceVersion) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.putVersion(name, v)
	return nil
}

func (m *memStore) Generation(context.Context) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.generation, nil
}

func (m *memStore) BumpGeneration(context.Context) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.generation++
	return m.generation, nil
}

func (m *memStore) LiveSlices(context.Context) ([]LiveSlice, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []LiveSlice
	for name, r := range m.records {
		if r.LiveVersion > 0 {
			out = append(out, LiveSlice{Producer: name, Version: r.LiveVersion, Slice: m.versions[name][r.LiveVersion].Slice})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Producer < out[j].Producer })
	return out, nil
}

func (m *memStore) LockCatalog(context.Context, time.Duration, time.Duration) (func(), error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.locked {
		return nil, Fail(ErrConflict, "another catalog change is going live right now")
	}
	m.locked = true
	return func() { m.mu.Lock(); m.locked = false; m.mu.Unlock() }, nil
}

// memSecrets is SecretStore in memory.
type memSecrets struct {
	mu     sync.Mutex
	values map[string]string
}

func (m *memSecrets) PutProducerSecret(_ context.Context, producer, key, value string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ref := "vault:secret/agora/producers/" + producer + "/secret#" + key
	m.values[ref] = value
	return ref, nil
}

func (m *memSecrets) OwnsRef(producer, ref string) bool {
	return strings.HasPrefix(ref, "vault:secret/agora/producers/"+producer+"/secret#")
}

func (m *memSecrets) resolve(_ context.Context, path, key string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.values["vault:"+path+"#"+key], nil
}

// noInstances is an empty broker state.
type noInstances struct{}

func (noInstances) ScanOfferingInstances(context.Context, string, string, int) ([]broker.IndexEntry, string, error) {
	return nil, "", nil
}

func (noInstances) CountInstances(context.Context, string, []string) (int64, error) { return 0, nil }

func (noInstances) LoadMany(_ context.Context, reqs []broker.LoadRequest) ([]broker.Snapshot, error) {
	return make([]broker.Snapshot, len(reqs)), nil
}

var (
	_ Store       = (*memStore)(nil)
	_ SecretStore = (*memSecrets)(nil)
)
