package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/agora-osb/agora/producers"
)

// ProducerStore implements producers.Store: producers, their slice
// versions and the catalog generation, in Redis. Every method is a
// constant number of round trips per producer; nothing runs SCAN or KEYS.
type ProducerStore struct {
	rdb    redis.UniversalClient
	prefix string
	claim  *redis.Script
}

// NewProducerStore returns a store over rdb; prefix "" means
// DefaultPrefix, the broker state's, so one prefix namespaces everything
// of one Agora.
func NewProducerStore(rdb redis.UniversalClient, prefix string) *ProducerStore {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return &ProducerStore{rdb: rdb, prefix: prefix, claim: redis.NewScript(claimScript)}
}

func (s *ProducerStore) namesKey() string { return s.prefix + ":producers" }
func (s *ProducerStore) recordKey(name string) string {
	return s.prefix + ":producers:{" + name + "}:record"
}
func (s *ProducerStore) slicesKey(name string) string {
	return s.prefix + ":producers:{" + name + "}:slices"
}
func (s *ProducerStore) seqKey(name string) string {
	return s.prefix + ":producers:{" + name + "}:version"
}
func (s *ProducerStore) generationKey() string  { return s.prefix + ":catalog:generation" }
func (s *ProducerStore) catalogLockKey() string { return s.prefix + ":catalog:lock" }

// producer-name and namespace claims, in one hash slot so one script
// decides them atomically (see claimScript).
func (s *ProducerStore) claimKeys() []string {
	base := s.prefix + ":producers:{claims}:"
	return []string{base + "names", base + "namespaces", base + "namespace-prefixes"}
}

// claimScript claims a producer name and her namespace atomically, so two
// producers can never own overlapping namespaces ("ovn-" and "ovn-x-":
// one would publish inside the other's), however many registrations race.
//
// Every namespace ends in "-", so two overlap exactly when one is a
// dash-terminated prefix of the other. Besides each claimed namespace the
// script records its proper dash-prefixes ("ovn-" for "ovn-x-"), so both
// directions are one HGET each.
//
// KEYS: 1 names (name -> namespace), 2 namespaces (namespace -> name),
// 3 namespace-prefixes (proper dash-prefix -> name).
// ARGV: 1 name, 2 namespace, then pairs of (name, namespace) of producers
// whose records exist: claims recorded before this script existed are
// backfilled from them, so an upgrade needs no migration.
// Returns "ok", "resumed" (this exact claim exists: a create that crashed
// before writing its record, finished now), "name:<namespace>" or
// "namespace:<owner>".
const claimScript = `
local function prefixes(ns)
  local out, from = {}, 1
  while true do
    local at = string.find(ns, "-", from, true)
    if (not at) or at >= #ns then break end
    table.insert(out, string.sub(ns, 1, at))
    from = at + 1
  end
  return out
end
local function claim(name, ns)
  redis.call("HSET", KEYS[1], name, ns)
  redis.call("HSET", KEYS[2], ns, name)
  for _, p in ipairs(prefixes(ns)) do
    redis.call("HSETNX", KEYS[3], p, name)
  end
end
for i = 3, #ARGV - 1, 2 do
  if redis.call("HEXISTS", KEYS[1], ARGV[i]) == 0 then claim(ARGV[i], ARGV[i + 1]) end
end
local name, ns = ARGV[1], ARGV[2]
local had = redis.call("HGET", KEYS[1], name)
if had then
  if had == ns then return "resumed" end
  return "name:" .. had
end
local owner = redis.call("HGET", KEYS[2], ns) or redis.call("HGET", KEYS[3], ns)
if owner then return "namespace:" .. owner end
for _, p in ipairs(prefixes(ns)) do
  owner = redis.call("HGET", KEYS[2], p)
  if owner then return "namespace:" .. owner end
end
claim(name, ns)
return "ok"
`

// Create implements producers.Store. The claim comes first, atomically;
// then the name joins the listing set, then the record is written. A
// crash in between leaves a claim (finished by the next create of the
// same producer) or a name without a record (which listing skips), never
// a record nobody can list or two owners of one namespace.
func (s *ProducerStore) Create(ctx context.Context, rec producers.Record) error {
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	existing, err := s.List(ctx)
	if err != nil {
		return err
	}
	args := make([]any, 0, 2+2*len(existing))
	args = append(args, rec.Name, rec.Namespace)
	for _, e := range existing {
		args = append(args, e.Name, e.Namespace)
	}
	verdict, err := s.claim.Run(ctx, s.rdb, s.claimKeys(), args...).Text()
	if err != nil {
		return producerRedisErr("claim producer name and namespace", err)
	}
	switch kind, detail, _ := strings.Cut(verdict, ":"); kind {
	case "ok", "resumed":
	case "name":
		return producers.Fail(producers.ErrConflict, "producer %q already exists", rec.Name)
	case "namespace":
		return producers.Fail(producers.ErrConflict, "namespace %q overlaps producer %q's namespace", rec.Namespace, detail)
	default:
		return fmt.Errorf("redis: claim producer %q: unexpected answer %q", rec.Name, verdict)
	}
	if err := s.rdb.SAdd(ctx, s.namesKey(), rec.Name).Err(); err != nil {
		return producerRedisErr("add producer name", err)
	}
	ok, err := s.rdb.SetNX(ctx, s.recordKey(rec.Name), data, 0).Result()
	if err != nil {
		return producerRedisErr("create producer", err)
	}
	if !ok {
		return producers.Fail(producers.ErrConflict, "producer %q already exists", rec.Name)
	}
	return nil
}

// Get implements producers.Store: it reads one producer record (ErrNotFound when absent).
func (s *ProducerStore) Get(ctx context.Context, name string) (producers.Record, error) {
	data, err := s.rdb.Get(ctx, s.recordKey(name)).Bytes()
	if errors.Is(err, redis.Nil) {
		return producers.Record{}, producers.Fail(producers.ErrNotFound, "producer %q does not exist", name)
	}
	if err != nil {
		return producers.Record{}, producerRedisErr("read producer", err)
	}
	var rec producers.Record
	if err := json.Unmarshal(data, &rec); err != nil {
		return producers.Record{}, fmt.Errorf("decode producer %q: %w", name, err)
	}
	return rec, nil
}

// List implements producers.Store: it reads every producer, sorted by name, in two round trips.
func (s *ProducerStore) List(ctx context.Context) ([]producers.Record, error) {
	names, err := s.rdb.SMembers(ctx, s.namesKey()).Result()
	if err != nil {
		return nil, producerRedisErr("list producers", err)
	}
	sort.Strings(names)
	if len(names) == 0 {
		return nil, nil
	}
	cmds := make([]*redis.StringCmd, len(names))
	if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, n := range names {
			cmds[i] = p.Get(ctx, s.recordKey(n))
		}
		return nil
	}); err != nil && !errors.Is(err, redis.Nil) {
		return nil, producerRedisErr("read producers", err)
	}
	out := make([]producers.Record, 0, len(names))
	for i, c := range cmds {
		data, err := c.Bytes()
		if errors.Is(err, redis.Nil) {
			continue // a create that crashed halfway
		}
		if err != nil {
			return nil, producerRedisErr("read producer "+names[i], err)
		}
		var rec producers.Record
		if err := json.Unmarshal(data, &rec); err != nil {
			return nil, fmt.Errorf("decode producer %q: %w", names[i], err)
		}
		out = append(out, rec)
	}
	return out, nil
}

// Update implements producers.Store: it changes one producer's record, and any of her versions, in one
// optimistic transaction: fn sees the current record and versions, and a
// concurrent change makes it run again.
func (s *ProducerStore) Update(ctx context.Context, name string, fn producers.UpdateFunc) error {
	rk, sk := s.recordKey(name), s.slicesKey(name)
	txf := func(tx *redis.Tx) error {
		rec, err := s.Get(ctx, name)
		if err != nil {
			return err
		}
		versions, err := s.readVersions(ctx, tx, name)
		if err != nil {
			return err
		}
		changed, err := fn(&rec, versions)
		if err != nil {
			return err
		}
		data, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, rk, data, 0)
			for _, v := range changed {
				vd, err := json.Marshal(v)
				if err != nil {
					return err
				}
				p.HSet(ctx, sk, strconv.Itoa(v.Version), vd)
			}
			return nil
		})
		return err
	}
	for range 20 {
		err := s.rdb.Watch(ctx, txf, rk, sk)
		if errors.Is(err, redis.TxFailedErr) {
			continue
		}
		var pe *producers.Error
		if err != nil && !errors.As(err, &pe) {
			return producerRedisErr("update producer "+name, err)
		}
		return err
	}
	return producers.Unavailable(nil, "producer %q is changing too often to update; retry", name)
}

// readVersions reads every version of a producer (slice texts included).
func (s *ProducerStore) readVersions(ctx context.Context, c redis.Cmdable, name string) (map[int]*producers.SliceVersion, error) {
	all, err := c.HGetAll(ctx, s.slicesKey(name)).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, producerRedisErr("read slice versions", err)
	}
	out := make(map[int]*producers.SliceVersion, len(all))
	for k, data := range all {
		var v producers.SliceVersion
		if err := json.Unmarshal([]byte(data), &v); err != nil {
			return nil, fmt.Errorf("decode slice version %s of %q: %w", k, name, err)
		}
		out[v.Version] = &v
	}
	return out, nil
}

// Versions implements producers.Store: it returns every version, newest first.
func (s *ProducerStore) Versions(ctx context.Context, name string) ([]*producers.SliceVersion, error) {
	m, err := s.readVersions(ctx, s.rdb, name)
	if err != nil {
		return nil, err
	}
	out := make([]*producers.SliceVersion, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version > out[j].Version })
	return out, nil
}

// Version implements producers.Store: it reads one version (ErrNotFound when absent).
func (s *ProducerStore) Version(ctx context.Context, name string, v int) (*producers.SliceVersion, error) {
	data, err := s.rdb.HGet(ctx, s.slicesKey(name), strconv.Itoa(v)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, producers.Fail(producers.ErrNotFound, "producer %q has no slice version %d", name, v)
	}
	if err != nil {
		return nil, producerRedisErr("read slice version", err)
	}
	var sv producers.SliceVersion
	if err := json.Unmarshal(data, &sv); err != nil {
		return nil, fmt.Errorf("decode slice version %d of %q: %w", v, name, err)
	}
	return &sv, nil
}

// NextVersion implements producers.Store: it hands out the next version number. Numbers of slices that
// then fail to be stored are simply skipped.
func (s *ProducerStore) NextVersion(ctx context.Context, name string) (int, error) {
	n, err := s.rdb.Incr(ctx, s.seqKey(name)).Result()
	if err != nil {
		return 0, producerRedisErr("next slice version", err)
	}
	return int(n), nil
}

// PutVersion implements producers.Store: it stores a new version.
func (s *ProducerStore) PutVersion(ctx context.Context, name string, v *producers.SliceVersion) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if err := s.rdb.HSet(ctx, s.slicesKey(name), strconv.Itoa(v.Version), data).Err(); err != nil {
		return producerRedisErr("store slice version", err)
	}
	return nil
}

// Generation implements producers.Store: it returns the catalog generation: it moves whenever a live
// slice changes.
func (s *ProducerStore) Generation(ctx context.Context) (int64, error) {
	n, err := s.rdb.Get(ctx, s.generationKey()).Int64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, producerRedisErr("read catalog generation", err)
	}
	return n, nil
}

// BumpGeneration implements producers.Store.
func (s *ProducerStore) BumpGeneration(ctx context.Context) (int64, error) {
	n, err := s.rdb.Incr(ctx, s.generationKey()).Result()
	if err != nil {
		return 0, producerRedisErr("bump catalog generation", err)
	}
	return n, nil
}

// LiveSlices implements producers.Store: it reads every producer's live slice, sorted by producer name,
// in three round trips whatever the number of producers.
func (s *ProducerStore) LiveSlices(ctx context.Context) ([]producers.LiveSlice, error) {
	recs, err := s.List(ctx)
	if err != nil {
		return nil, err
	}
	var live []producers.Record
	for _, r := range recs {
		if r.LiveVersion > 0 {
			live = append(live, r)
		}
	}
	cmds := make([]*redis.StringCmd, len(live))
	if len(live) > 0 {
		if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, r := range live {
				cmds[i] = p.HGet(ctx, s.slicesKey(r.Name), strconv.Itoa(r.LiveVersion))
			}
			return nil
		}); err != nil && !errors.Is(err, redis.Nil) {
			return nil, producerRedisErr("read live slices", err)
		}
	}
	out := make([]producers.LiveSlice, 0, len(live))
	for i, c := range cmds {
		data, err := c.Bytes()
		if err != nil {
			// A live version that cannot be read would silently drop her
			// offerings (and strand her instances): fail the whole read.
			return nil, producerRedisErr(fmt.Sprintf("read live slice v%d of %q", live[i].LiveVersion, live[i].Name), err)
		}
		var sv producers.SliceVersion
		if err := json.Unmarshal(data, &sv); err != nil {
			return nil, fmt.Errorf("decode live slice of %q: %w", live[i].Name, err)
		}
		out = append(out, producers.LiveSlice{Producer: live[i].Name, Version: sv.Version, Slice: sv.Slice})
	}
	return out, nil
}

// LockCatalog implements producers.Store: it takes the lock that serialises going live, waiting up to
// wait for it. The returned func releases it (only if still ours).
func (s *ProducerStore) LockCatalog(ctx context.Context, ttl, wait time.Duration) (func(), error) {
	var b [16]byte
	_, _ = rand.Read(b[:])
	token := hex.EncodeToString(b[:])
	deadline := time.Now().Add(wait)
	for {
		ok, err := s.rdb.SetNX(ctx, s.catalogLockKey(), token, ttl).Result()
		if err != nil {
			return nil, producerRedisErr("take catalog lock", err)
		}
		if ok {
			return func() {
				_ = s.rdb.Eval(context.WithoutCancel(ctx), unlockScript, []string{s.catalogLockKey()}, token).Err()
			}, nil
		}
		if time.Now().After(deadline) {
			return nil, producers.Fail(producers.ErrConflict, "another catalog change is going live right now; retry in a few seconds")
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func producerRedisErr(op string, err error) error {
	return fmt.Errorf("redis: %s: %w", op, err)
}

var _ producers.Store = (*ProducerStore)(nil)
