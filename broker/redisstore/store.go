package redisstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/agora-osb/agora/broker"
)

// DefaultPrefix is the key prefix when none is configured.
const DefaultPrefix = "agora"

// tombstoneTTL is how long a deleted instance or binding still answers
// last_operation with 410 Gone. Cloud Foundry polls every 60 s, so a day
// is ample.
const tombstoneTTL = 24 * time.Hour

// Store implements broker.StateStore.
type Store struct {
	rdb       redis.UniversalClient
	prefix    string
	commit    *redis.Script
	unlock    *redis.Script
	addCounts *redis.Script
}

// New returns a store over rdb. prefix namespaces every key (DefaultPrefix
// when empty), so several brokers, or tests, can share one Redis.
func New(rdb redis.UniversalClient, prefix string) *Store {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return &Store{rdb: rdb, prefix: prefix, commit: redis.NewScript(commitScript), unlock: redis.NewScript(unlockScript), addCounts: redis.NewScript(addCountsScript)}
}

type instanceKeys struct {
	instance, bindings, ops, lock, status string
}

func (s *Store) keys(iid string) instanceKeys {
	base := s.prefix + ":{" + iid + "}:"
	return instanceKeys{
		instance: base + "instance",
		bindings: base + "bindings",
		ops:      base + "ops",
		lock:     base + "lock",
		status:   base + "status",
	}
}

// statusKey is keys(iid).status alone, for the poll, which needs no other.
func (s *Store) statusKey(iid string) string {
	return s.prefix + ":{" + iid + "}:status"
}

func (s *Store) bindingTombstoneKey(iid, bid string) string {
	return s.prefix + ":{" + iid + "}:binding-tombstone:" + bid
}

// CheckInstanceID implements broker.InstanceIDRule. An instance's keys
// take its ID as their hash tag (keys), and so do the keys every instance
// shares, under fixed words: an instance named like one would put its
// records in their slot, and one named "expiries" its bindings hash on
// the expiry schedule's key ({expiries}:bindings), breaking the schedule
// of every binding. Platforms send GUIDs; these words are refused.
func (s *Store) CheckInstanceID(id string) error {
	switch id {
	case "expiries", "jobs", "canary", "catalog-notices", "upgrades":
		return errors.New("is a word Agora's store keeps for itself: use another (platforms send GUIDs)")
	}
	return nil
}

// IsInstanceKey reports whether key is one of an instance's own keys
// (keys, bindingTombstoneKey): each holds that instance's records only,
// so a command on them costs the same whatever the number of instances.
// make bench-scale tells a Redis stall from growth by it.
func (s *Store) IsInstanceKey(key string) bool {
	rest, ok := strings.CutPrefix(key, s.prefix+":{")
	if !ok || key == s.expiriesKey() {
		return false
	}
	iid, _, ok := strings.Cut(rest, "}:")
	if !ok {
		return false
	}
	switch k := s.keys(iid); key {
	case k.instance, k.bindings, k.ops, k.lock, k.status:
		return true
	}
	return strings.HasPrefix(key, s.bindingTombstoneKey(iid, ""))
}

// LockAndLoad implements broker.StateStore.
func (s *Store) LockAndLoad(ctx context.Context, ttl time.Duration, req broker.LoadRequest) (broker.Lock, broker.Snapshot, error) {
	token, err := newToken()
	if err != nil {
		return broker.Lock{}, broker.Snapshot{}, err
	}
	k := s.keys(req.InstanceID)
	var lockCmd *redis.BoolCmd
	cmds, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		lockCmd = p.SetNX(ctx, k.lock, token, ttl)
		s.queueLoad(ctx, p, req)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return broker.Lock{}, broker.Snapshot{}, fmt.Errorf("redis: lock and load instance %q: %w", req.InstanceID, err)
	}
	if !lockCmd.Val() {
		return broker.Lock{}, broker.Snapshot{}, broker.ErrLocked
	}
	lock := broker.Lock{InstanceID: req.InstanceID, Token: token}
	snap, err := decodeLoad(cmds[1:], req)
	if err != nil {
		// Do not keep a lock we cannot act under.
		_ = s.Unlock(context.WithoutCancel(ctx), lock)
		return broker.Lock{}, broker.Snapshot{}, err
	}
	return lock, snap, nil
}

// Load implements broker.StateStore.
func (s *Store) Load(ctx context.Context, req broker.LoadRequest) (broker.Snapshot, error) {
	cmds, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		s.queueLoad(ctx, p, req)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return broker.Snapshot{}, fmt.Errorf("redis: load instance %q: %w", req.InstanceID, err)
	}
	return decodeLoad(cmds, req)
}

// queueLoad queues the reads for req, always in the order decodeLoad
// expects: instance, status (unless RecordsOnly), then the optional ones.
func (s *Store) queueLoad(ctx context.Context, p redis.Pipeliner, req broker.LoadRequest) {
	k := s.keys(req.InstanceID)
	p.Get(ctx, k.instance)
	if !req.RecordsOnly {
		p.Get(ctx, k.status)
	}
	if req.BindingID != "" {
		p.HGet(ctx, k.bindings, req.BindingID)
		p.Get(ctx, s.bindingTombstoneKey(req.InstanceID, req.BindingID))
	}
	if req.OperationID != "" {
		p.HGet(ctx, k.ops, req.OperationID)
	}
	if req.AllBindings {
		p.HGetAll(ctx, k.bindings)
	}
	if req.PredecessorID != "" {
		p.HGet(ctx, k.bindings, req.PredecessorID)
	}
}

func decodeLoad(cmds []redis.Cmder, req broker.LoadRequest) (broker.Snapshot, error) {
	var snap broker.Snapshot
	next := func() redis.Cmder { c := cmds[0]; cmds = cmds[1:]; return c }
	var errs []error
	str := func(c redis.Cmder) (string, bool) {
		v, err := c.(*redis.StringCmd).Result()
		if errors.Is(err, redis.Nil) {
			return "", false
		}
		if err != nil {
			errs = append(errs, err)
			return "", false
		}
		return v, true
	}
	if v, ok := str(next()); ok {
		snap.Instance = new(broker.Instance)
		errs = append(errs, json.Unmarshal([]byte(v), snap.Instance))
	}
	if !req.RecordsOnly {
		decodeTombstone(str, next(), req, &snap)
	}
	if req.BindingID != "" {
		if v, ok := str(next()); ok {
			snap.Binding = new(broker.Binding)
			errs = append(errs, json.Unmarshal([]byte(v), snap.Binding))
		}
		if v, ok := str(next()); ok {
			var op broker.Operation
			if err := json.Unmarshal([]byte(v), &op); err == nil {
				snap.BindingTombstone = op.ID
				if snap.Operation == nil && (req.OperationID == "" || req.OperationID == op.ID) {
					snap.Operation = &op
				}
			}
		}
	}
	if req.OperationID != "" {
		// The asked-for operation is usually the record's latest, whose
		// summary is already decoded: skip decoding it again, which is
		// most of the cost of a last_operation poll.
		v, ok := str(next())
		if ok && !(req.OperationUnlessLatest && latestIs(snap, req)) {
			snap.Operation = new(broker.Operation)
			errs = append(errs, json.Unmarshal([]byte(v), snap.Operation))
		}
	}
	if req.AllBindings {
		all, err := next().(*redis.MapStringStringCmd).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			errs = append(errs, err)
		}
		for _, v := range all {
			b := new(broker.Binding)
			errs = append(errs, json.Unmarshal([]byte(v), b))
			snap.Bindings = append(snap.Bindings, b)
		}
	}
	if req.PredecessorID != "" {
		if v, ok := str(next()); ok {
			snap.Predecessor = new(broker.Binding)
			errs = append(errs, json.Unmarshal([]byte(v), snap.Predecessor))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return broker.Snapshot{}, fmt.Errorf("redis: read instance %q: %w", req.InstanceID, err)
	}
	return snap, nil
}

// decodeTombstone reads the status key: after an async deprovision it
// names the deleting operation, which outlives the instance there only.
func decodeTombstone(str func(redis.Cmder) (string, bool), c redis.Cmder, req broker.LoadRequest, snap *broker.Snapshot) {
	v, ok := str(c)
	if !ok {
		return
	}
	var st broker.InstanceStatus
	if err := json.Unmarshal([]byte(v), &st); err == nil && st.Deleted && st.Operation != nil {
		snap.Tombstone = st.Operation.ID
		if req.OperationID == "" || req.OperationID == st.Operation.ID {
			snap.Operation = st.Operation.Operation(req.InstanceID)
		}
	}
}

// latestIs reports whether the requested operation is the latest one of
// the record it belongs to.
func latestIs(snap broker.Snapshot, req broker.LoadRequest) bool {
	last := (*broker.OperationSummary)(nil)
	switch {
	case req.BindingID != "" && snap.Binding != nil:
		last = snap.Binding.LastOp
	case req.BindingID == "" && snap.Instance != nil:
		last = snap.Instance.LastOp
	}
	return last != nil && last.ID == req.OperationID
}

// commitScript applies a Mutation atomically.
//
// KEYS: 1 instance, 2 bindings, 3 ops, 4 lock, 5 status, 6 binding tombstone.
// ARGV: 1 operation that must still be in progress (or ""), 2 lock token
// to release (or ""), 3 instance JSON to put (or ""), 4 "1" to delete the
// instance, 5 status JSON (or "" to delete it), 6 tombstone TTL in ms,
// 7-8 binding ID and JSON to put, 9 binding ID to delete, 10 that
// binding's tombstone JSON, 11-12 operation ID and JSON to put, 13 "1"
// when the operation's attempt token must equal 14, 15... operation IDs
// to delete.
//
// The guard decodes the stored operation: its JSON also holds the
// platform's raw context, which may contain any text at all, so only the
// decoded fields say what state it is in. A record that does not decode
// is treated as not in progress: nothing is written over what cannot be
// read.
//
// The status key is derived from the instance record (its latest
// operation summary) and written with it, so a last_operation poll reads
// one small key instead of decoding the whole instance; after an async
// deprovision it stays behind, marked deleted and expiring, as the
// instance's tombstone.
const commitScript = `
local cond = ARGV[1]
if cond ~= "" then
  local raw = redis.call("HGET", KEYS[3], cond)
  local ok, op = false, nil
  if raw then
    ok, op = pcall(cjson.decode, raw)
  end
  if (not ok) or type(op) ~= "table" or op["state"] ~= "in progress" then
    return redis.error_reply("STALE operation is no longer in progress")
  end
  if ARGV[13] == "1" then
    local attempt = op["attempt"]
    if type(attempt) ~= "string" then
      attempt = ""
    end
    if attempt ~= ARGV[14] then
      return redis.error_reply("STALE operation is in the hands of another attempt")
    end
  end
end
if ARGV[4] == "1" then
  redis.call("DEL", KEYS[1], KEYS[2], KEYS[3])
  if ARGV[5] ~= "" then
    redis.call("SET", KEYS[5], ARGV[5], "PX", ARGV[6])
  else
    redis.call("DEL", KEYS[5])
  end
elseif ARGV[3] ~= "" then
  redis.call("SET", KEYS[1], ARGV[3])
  if ARGV[5] ~= "" then
    redis.call("SET", KEYS[5], ARGV[5])
  else
    redis.call("DEL", KEYS[5])
  end
end
if ARGV[7] ~= "" then
  redis.call("HSET", KEYS[2], ARGV[7], ARGV[8])
end
if ARGV[9] ~= "" then
  redis.call("HDEL", KEYS[2], ARGV[9])
  if ARGV[10] ~= "" then
    redis.call("SET", KEYS[6], ARGV[10], "PX", ARGV[6])
  end
end
if ARGV[11] ~= "" and ARGV[4] ~= "1" then
  redis.call("HSET", KEYS[3], ARGV[11], ARGV[12])
end
for i = 15, #ARGV do
  redis.call("HDEL", KEYS[3], ARGV[i])
end
if ARGV[2] ~= "" and redis.call("GET", KEYS[4]) == ARGV[2] then
  redis.call("DEL", KEYS[4])
end
return "OK"
`

const unlockScript = `
if redis.call("GET", KEYS[1]) == ARGV[1] then
  return redis.call("DEL", KEYS[1])
end
return 0
`

// Commit implements broker.StateStore.
func (s *Store) Commit(ctx context.Context, m broker.Mutation, unlock *broker.Lock) error {
	keys, args, err := s.commitArgs(m, unlock)
	if err != nil {
		return err
	}
	return commitErr(m.InstanceID, s.commit.Run(ctx, s.rdb, keys, args...).Err())
}

// CommitMany applies unconditional, unlocked mutations of distinct
// instances with the same script as Commit, pipelined: one round trip for
// all of them. It is for bulk loads (tools/benchscale seeds a million
// instances with it), not for the broker, whose commits each follow a
// lock. A failure of any mutation is returned; the others still apply.
func (s *Store) CommitMany(ctx context.Context, ms []broker.Mutation) error {
	if len(ms) == 0 {
		return nil
	}
	// EvalSha in a pipeline cannot fall back to EVAL per command, so the
	// script is loaded first (on every node of a Cluster).
	if err := s.loadCommitScript(ctx); err != nil {
		return fmt.Errorf("redis: load the commit script: %w", err)
	}
	cmds := make([]*redis.Cmd, len(ms))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, m := range ms {
			keys, args, err := s.commitArgs(m, nil)
			if err != nil {
				return err
			}
			cmds[i] = s.commit.EvalSha(ctx, p, keys, args...)
		}
		return nil
	})
	for i, c := range cmds {
		if c != nil && c.Err() != nil && !errors.Is(c.Err(), redis.Nil) {
			return commitErr(ms[i].InstanceID, c.Err())
		}
	}
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("redis: commit %d instances: %w", len(ms), err)
	}
	return nil
}

func (s *Store) loadCommitScript(ctx context.Context) error {
	if cc, ok := s.rdb.(*redis.ClusterClient); ok {
		return cc.ForEachShard(ctx, func(ctx context.Context, c *redis.Client) error {
			return s.commit.Load(ctx, c).Err()
		})
	}
	return s.commit.Load(ctx, s.rdb).Err()
}

func commitErr(instanceID string, err error) error {
	if err != nil && strings.HasPrefix(err.Error(), "STALE") {
		return broker.ErrStale
	}
	if err != nil {
		return fmt.Errorf("redis: commit instance %q: %w", instanceID, err)
	}
	return nil
}

// commitArgs are the keys and arguments of the commit script for m.
func (s *Store) commitArgs(m broker.Mutation, unlock *broker.Lock) ([]string, []any, error) {
	if m.InstanceID == "" {
		return nil, nil, errors.New("redis: commit without an instance ID")
	}
	k := s.keys(m.InstanceID)
	tombstoneBinding := m.DeleteBinding
	if tombstoneBinding == "" {
		tombstoneBinding = "-"
	}
	keys := []string{k.instance, k.bindings, k.ops, k.lock, k.status, s.bindingTombstoneKey(m.InstanceID, tombstoneBinding)}

	args := make([]any, 0, 14+len(m.DeleteOperations))
	token := ""
	if unlock != nil {
		token = unlock.Token
	}
	instanceJSON, err := marshalOrEmpty(m.PutInstance)
	if err != nil {
		return nil, nil, err
	}
	opJSON, err := marshalOrEmpty(m.PutOperation)
	if err != nil {
		return nil, nil, err
	}
	bindingID, bindingJSON := "", ""
	if m.PutBinding != nil {
		bindingID = m.PutBinding.ID
		if bindingJSON, err = marshalOrEmpty(m.PutBinding); err != nil {
			return nil, nil, err
		}
	}
	opID := ""
	if m.PutOperation != nil {
		opID = m.PutOperation.ID
	}
	bindingTombstone := ""
	if m.DeleteBinding != "" && m.BindingTombstone {
		bindingTombstone = opJSON
	}
	statusJSON, err := commitStatus(m)
	if err != nil {
		return nil, nil, err
	}
	deleteInstance := "0"
	if m.DeleteInstance {
		deleteInstance = "1"
	}
	fenced, attempt := "0", ""
	if m.Fence != nil {
		if m.IfOperationInProgress == "" {
			return nil, nil, errors.New("redis: a fenced commit must name its operation (IfOperationInProgress)")
		}
		fenced, attempt = "1", m.Fence.Attempt
	}
	args = append(args,
		m.IfOperationInProgress, token, instanceJSON, deleteInstance,
		statusJSON, strconv.FormatInt(tombstoneTTL.Milliseconds(), 10),
		bindingID, bindingJSON, m.DeleteBinding, bindingTombstone,
		opID, opJSON, fenced, attempt)
	for _, id := range m.DeleteOperations {
		args = append(args, id)
	}
	return keys, args, nil
}

// commitStatus is the status key's new value for m ("" deletes it).
func commitStatus(m broker.Mutation) (string, error) {
	var st *broker.InstanceStatus
	switch {
	case m.PutInstance != nil && m.PutInstance.LastOp != nil:
		st = &broker.InstanceStatus{Operation: m.PutInstance.LastOp}
	case m.DeleteInstance && m.Tombstone && m.PutOperation != nil:
		st = &broker.InstanceStatus{Operation: m.PutOperation.Summary(), Deleted: true}
	}
	plain, err := marshalOrEmpty(st)
	if err != nil || st == nil {
		return plain, err
	}
	return withAnswer(plain, st), nil
}

// The status key keeps, ahead of the summary, the ready-made answer to a
// poll (broker.PollAnswer), so that a poll is one GET and a slice:
//
//	{"p":"1|<operation id>|<deleted 0/1>|<until, Unix ms; 0: for good>|<answer length>","osb":<answer>,"op":{...},...}
//
// It is still one JSON object, whose summary fields are where they were:
// a reader that knows only InstanceStatus (an older Agora during a
// rolling upgrade, decodeLoad) ignores "p" and "osb", and Status reads
// a value without them (written before the answer was kept) as it always
// did.
const answerHeader = `{"p":"1|`

// withAnswer puts the answer ahead of plain, st's JSON. An operation ID
// that would need escaping (Agora's are hex) keeps plain as it is.
func withAnswer(plain string, st *broker.InstanceStatus) string {
	a := broker.NewPollAnswer(st.Operation)
	if strings.ContainsFunc(a.OperationID, func(r rune) bool { return r == '"' || r == '\\' || r == '|' || r < ' ' || r > '~' }) {
		return plain
	}
	deleted, until := "0", int64(0)
	if st.Deleted {
		deleted = "1"
	}
	if !a.Until.IsZero() {
		until = a.Until.UnixMilli()
	}
	var b strings.Builder
	b.Grow(len(plain) + len(a.Body) + len(a.OperationID) + 48)
	b.WriteString(answerHeader)
	b.WriteString(a.OperationID)
	b.WriteString("|" + deleted + "|" + strconv.FormatInt(until, 10) + "|" + strconv.Itoa(len(a.Body)) + `","osb":`)
	b.Write(a.Body)
	b.WriteString(",")
	b.WriteString(strings.TrimPrefix(plain, "{"))
	return b.String()
}

// readAnswer is the answer withAnswer stored in v, if it stored one.
func readAnswer(v []byte) (a *broker.PollAnswer, deleted, ok bool) {
	rest, ok := bytes.CutPrefix(v, []byte(answerHeader))
	if !ok {
		return nil, false, false
	}
	header, rest, ok := bytes.Cut(rest, []byte(`"`))
	if !ok {
		return nil, false, false
	}
	opID, header, _ := bytes.Cut(header, []byte("|"))
	del, header, _ := bytes.Cut(header, []byte("|"))
	until, length, _ := bytes.Cut(header, []byte("|"))
	untilMs, err1 := strconv.ParseInt(string(until), 10, 64)
	n, err2 := strconv.Atoi(string(length))
	rest, ok = bytes.CutPrefix(rest, []byte(`,"osb":`))
	if !ok || err1 != nil || err2 != nil || n < 0 || n >= len(rest) || rest[n] != ',' || (string(del) != "0" && string(del) != "1") {
		return nil, false, false
	}
	a = &broker.PollAnswer{OperationID: string(opID), Body: rest[:n:n]}
	if untilMs != 0 {
		a.Until = time.UnixMilli(untilMs)
	}
	return a, string(del) == "1", true
}

// Status implements broker.StateStore: one GET of a small key. A value
// with a ready-made answer is not decoded further: the answer is what a
// poll needs (InstanceStatus.Answer).
func (s *Store) Status(ctx context.Context, instanceID string) (broker.InstanceStatus, error) {
	v, err := s.rdb.Get(ctx, s.statusKey(instanceID)).Bytes()
	if errors.Is(err, redis.Nil) {
		return broker.InstanceStatus{}, broker.ErrNotFound
	}
	if err != nil {
		return broker.InstanceStatus{}, fmt.Errorf("redis: read status of instance %q: %w", instanceID, err)
	}
	if a, deleted, ok := readAnswer(v); ok {
		return broker.InstanceStatus{Answer: a, Deleted: deleted}, nil
	}
	var st broker.InstanceStatus
	if err := json.Unmarshal(v, &st); err != nil {
		return broker.InstanceStatus{}, fmt.Errorf("redis: decode status of instance %q: %w", instanceID, err)
	}
	return st, nil
}

// Unlock implements broker.StateStore.
func (s *Store) Unlock(ctx context.Context, l broker.Lock) error {
	if err := s.unlock.Run(ctx, s.rdb, []string{s.keys(l.InstanceID).lock}, l.Token).Err(); err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("redis: release lock of instance %q: %w", l.InstanceID, err)
	}
	return nil
}

// Ping implements broker.StateStore.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	return nil
}

func marshalOrEmpty[T any](v *T) (string, error) {
	if v == nil {
		return "", nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("redis: encode record: %w", err)
	}
	return string(b), nil
}

func newToken() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("lock token: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

var _ broker.StateStore = (*Store)(nil)
