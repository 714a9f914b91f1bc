package producers

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultPrefix matches the broker state store's default, so one prefix
// namespaces everything of one Agora.
const DefaultPrefix = "agora"

// Store keeps producers and their slice versions in Redis. Every method is
// a constant number of round trips per producer; nothing runs SCAN or KEYS.
type Store struct {
	rdb    redis.UniversalClient
	prefix string
}

// NewStore returns a store over rdb; prefix "" means DefaultPrefix.
func NewStore(rdb redis.UniversalClient, prefix string) *Store {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return &Store{rdb: rdb, prefix: prefix}
}

// record is the stored form of a producer: the public fields and the
// sha256 of her token, which never leaves this package.
type record struct {
	Producer
	TokenSHA256 string `json:"token_sha256"`
}

func (s *Store) namesKey() string             { return s.prefix + ":producers" }
func (s *Store) recordKey(name string) string { return s.prefix + ":producers:{" + name + "}:record" }
func (s *Store) slicesKey(name string) string { return s.prefix + ":producers:{" + name + "}:slices" }
func (s *Store) seqKey(name string) string    { return s.prefix + ":producers:{" + name + "}:version" }
func (s *Store) generationKey() string        { return s.prefix + ":catalog:generation" }
func (s *Store) catalogLockKey() string       { return s.prefix + ":catalog:lock" }

func redisErr(op string, err error) error {
	return fmt.Errorf("redis: %s: %w", op, err)
}

// create stores a new producer, or fails with ErrConflict when the name is
// taken. The name joins the listing set first: a crash between the two
// writes leaves a name without a record, which listing skips, rather than
// a record nobody can list.
func (s *Store) create(ctx context.Context, rec record) error {
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if err := s.rdb.SAdd(ctx, s.namesKey(), rec.Name).Err(); err != nil {
		return redisErr("add producer name", err)
	}
	ok, err := s.rdb.SetNX(ctx, s.recordKey(rec.Name), data, 0).Result()
	if err != nil {
		return redisErr("create producer", err)
	}
	if !ok {
		return fail(ErrConflict, "producer %q already exists", rec.Name)
	}
	return nil
}

// get reads one producer record (ErrNotFound when absent).
func (s *Store) get(ctx context.Context, name string) (record, error) {
	data, err := s.rdb.Get(ctx, s.recordKey(name)).Bytes()
	if errors.Is(err, redis.Nil) {
		return record{}, fail(ErrNotFound, "producer %q does not exist", name)
	}
	if err != nil {
		return record{}, redisErr("read producer", err)
	}
	var rec record
	if err := json.Unmarshal(data, &rec); err != nil {
		return record{}, fmt.Errorf("decode producer %q: %w", name, err)
	}
	return rec, nil
}

// list reads every producer, sorted by name, in two round trips.
func (s *Store) list(ctx context.Context) ([]record, error) {
	names, err := s.rdb.SMembers(ctx, s.namesKey()).Result()
	if err != nil {
		return nil, redisErr("list producers", err)
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
		return nil, redisErr("read producers", err)
	}
	out := make([]record, 0, len(names))
	for i, c := range cmds {
		data, err := c.Bytes()
		if errors.Is(err, redis.Nil) {
			continue // a create that crashed halfway
		}
		if err != nil {
			return nil, redisErr("read producer "+names[i], err)
		}
		var rec record
		if err := json.Unmarshal(data, &rec); err != nil {
			return nil, fmt.Errorf("decode producer %q: %w", names[i], err)
		}
		out = append(out, rec)
	}
	return out, nil
}

// update changes one producer's record, and any of her versions, in one
// optimistic transaction: fn sees the current record and versions, and a
// concurrent change makes it run again.
func (s *Store) update(ctx context.Context, name string, fn func(rec *record, versions map[int]*SliceVersion) ([]*SliceVersion, error)) error {
	rk, sk := s.recordKey(name), s.slicesKey(name)
	txf := func(tx *redis.Tx) error {
		rec, err := s.get(ctx, name)
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
		var pe *Error
		if err != nil && !errors.As(err, &pe) {
			return redisErr("update producer "+name, err)
		}
		return err
	}
	return unavailable(nil, "producer %q is changing too often to update; retry", name)
}

// readVersions reads every version of a producer (slice texts included).
func (s *Store) readVersions(ctx context.Context, c redis.Cmdable, name string) (map[int]*SliceVersion, error) {
	all, err := c.HGetAll(ctx, s.slicesKey(name)).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, redisErr("read slice versions", err)
	}
	out := make(map[int]*SliceVersion, len(all))
	for k, data := range all {
		var v SliceVersion
		if err := json.Unmarshal([]byte(data), &v); err != nil {
			return nil, fmt.Errorf("decode slice version %s of %q: %w", k, name, err)
		}
		out[v.Version] = &v
	}
	return out, nil
}

// versions returns every version, newest first.
func (s *Store) versions(ctx context.Context, name string) ([]*SliceVersion, error) {
	m, err := s.readVersions(ctx, s.rdb, name)
	if err != nil {
		return nil, err
	}
	out := make([]*SliceVersion, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version > out[j].Version })
	return out, nil
}

// version reads one version (ErrNotFound when absent).
func (s *Store) version(ctx context.Context, name string, v int) (*SliceVersion, error) {
	data, err := s.rdb.HGet(ctx, s.slicesKey(name), strconv.Itoa(v)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, fail(ErrNotFound, "producer %q has no slice version %d", name, v)
	}
	if err != nil {
		return nil, redisErr("read slice version", err)
	}
	var sv SliceVersion
	if err := json.Unmarshal(data, &sv); err != nil {
		return nil, fmt.Errorf("decode slice version %d of %q: %w", v, name, err)
	}
	return &sv, nil
}

// nextVersion hands out the next version number. Numbers of slices that
// then fail to be stored are simply skipped.
func (s *Store) nextVersion(ctx context.Context, name string) (int, error) {
	n, err := s.rdb.Incr(ctx, s.seqKey(name)).Result()
	if err != nil {
		return 0, redisErr("next slice version", err)
	}
	return int(n), nil
}

// putVersion stores a new version.
func (s *Store) putVersion(ctx context.Context, name string, v *SliceVersion) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if err := s.rdb.HSet(ctx, s.slicesKey(name), strconv.Itoa(v.Version), data).Err(); err != nil {
		return redisErr("store slice version", err)
	}
	return nil
}

// Generation returns the catalog generation: it moves whenever a live
// slice changes.
func (s *Store) Generation(ctx context.Context) (int64, error) {
	n, err := s.rdb.Get(ctx, s.generationKey()).Int64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, redisErr("read catalog generation", err)
	}
	return n, nil
}

func (s *Store) bumpGeneration(ctx context.Context) (int64, error) {
	n, err := s.rdb.Incr(ctx, s.generationKey()).Result()
	if err != nil {
		return 0, redisErr("bump catalog generation", err)
	}
	return n, nil
}

// LiveSlice is one producer's live slice text.
type LiveSlice struct {
	Producer string
	Version  int
	Slice    string
}

// LiveSlices reads every producer's live slice, sorted by producer name,
// in three round trips whatever the number of producers.
func (s *Store) LiveSlices(ctx context.Context) ([]LiveSlice, error) {
	recs, err := s.list(ctx)
	if err != nil {
		return nil, err
	}
	var live []record
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
			return nil, redisErr("read live slices", err)
		}
	}
	out := make([]LiveSlice, 0, len(live))
	for i, c := range cmds {
		data, err := c.Bytes()
		if err != nil {
			// A live version that cannot be read would silently drop her
			// offerings (and strand her instances): fail the whole read.
			return nil, redisErr(fmt.Sprintf("read live slice v%d of %q", live[i].LiveVersion, live[i].Name), err)
		}
		var sv SliceVersion
		if err := json.Unmarshal(data, &sv); err != nil {
			return nil, fmt.Errorf("decode live slice of %q: %w", live[i].Name, err)
		}
		out = append(out, LiveSlice{Producer: live[i].Name, Version: sv.Version, Slice: sv.Slice})
	}
	return out, nil
}

// lockCatalog takes the lock that serialises going live, waiting up to
// wait for it. The returned func releases it (only if still ours).
func (s *Store) lockCatalog(ctx context.Context, ttl, wait time.Duration) (func(), error) {
	var b [16]byte
	_, _ = rand.Read(b[:])
	token := hex.EncodeToString(b[:])
	deadline := time.Now().Add(wait)
	for {
		ok, err := s.rdb.SetNX(ctx, s.catalogLockKey(), token, ttl).Result()
		if err != nil {
			return nil, redisErr("take catalog lock", err)
		}
		if ok {
			return func() {
				_ = s.rdb.Eval(context.WithoutCancel(ctx), releaseScript, []string{s.catalogLockKey()}, token).Err()
			}, nil
		}
		if time.Now().After(deadline) {
			return nil, fail(ErrConflict, "another catalog change is going live right now; retry in a few seconds")
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

const releaseScript = `
if redis.call("GET", KEYS[1]) == ARGV[1] then
  return redis.call("DEL", KEYS[1])
end
return 0
`
