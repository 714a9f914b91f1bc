package producers

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/agora-osb/agora/broker"
)

// slowIndex is one offering's index of n IDs whose record reads take a
// while, counting how many run at once and failing the failOn-th.
type slowIndex struct {
	n, failOn int
	stale     map[int]bool // entries whose record was created at another time

	mu               sync.Mutex
	loads, now, most int
}

func (x *slowIndex) ScanOfferingInstances(_ context.Context, _ string, cursor string, count int) ([]broker.IndexEntry, string, error) {
	from, err := strconv.Atoi(cmp.Or(cursor, "0"))
	if err != nil {
		return nil, "", broker.ErrBadCursor
	}
	to := min(from+count, x.n)
	entries := make([]broker.IndexEntry, 0, to-from)
	for i := from; i < to; i++ {
		e := broker.IndexEntry{InstanceID: fmt.Sprintf("i-%04d", i)}
		if x.stale[i] {
			e.CreatedAt = time.Unix(1, 0) // the records are created at the zero time
		}
		entries = append(entries, e)
	}
	if to == x.n {
		return entries, "", nil
	}
	return entries, strconv.Itoa(to), nil
}

func (*slowIndex) CountInstances(context.Context, string, []string) (int64, error) { return 0, nil }

func (x *slowIndex) LoadMany(ctx context.Context, reqs []broker.LoadRequest) ([]broker.Snapshot, error) {
	x.mu.Lock()
	x.loads++
	call := x.loads
	x.now++
	x.most = max(x.most, x.now)
	x.mu.Unlock()
	defer func() { x.mu.Lock(); x.now--; x.mu.Unlock() }()
	if call == x.failOn {
		return nil, errors.New("redis: connection reset")
	}
	select {
	case <-time.After(20 * time.Millisecond): // long enough for the next batch to start
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	out := make([]broker.Snapshot, len(reqs))
	for i, r := range reqs {
		out[i] = broker.Snapshot{Instance: &broker.Instance{ID: r.InstanceID, ServiceID: "svc"}}
	}
	return out, nil
}

// A page's batches are read in the background, a bounded few at a time,
// and the page keeps the index's order.
func TestWalkReadsBatchesInTheBackgroundInOrder(t *testing.T) {
	idx := &slowIndex{n: 1500}
	s := &Service{instances: idx}
	targets := []walkTarget{{serviceID: "svc", offering: "o"}}
	page, err := s.walk(t.Context(), targets, "", MaxPageSize, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Instances) != MaxPageSize || page.NextCursor == "" {
		t.Fatalf("page of %d instances, next %q; want %d and a cursor", len(page.Instances), page.NextCursor, MaxPageSize)
	}
	for i, v := range page.Instances {
		if want := fmt.Sprintf("i-%04d", i); v.ID != want {
			t.Fatalf("instance %d is %s, want %s: the page lost the index's order", i, v.ID, want)
		}
	}
	if idx.most < 2 || idx.most > walkReadsInFlight {
		t.Errorf("%d reads at once, want 2 to %d", idx.most, walkReadsInFlight)
	}
	rest, err := s.walk(t.Context(), targets, page.NextCursor, MaxPageSize, nil)
	if err != nil || len(rest.Instances) != 500 || rest.NextCursor != "" || rest.Instances[0].ID != "i-1000" {
		t.Fatalf("second page: %d instances, next %q, %v; want the last 500", len(rest.Instances), rest.NextCursor, err)
	}
}

// A failed read fails the page, and no read outlives it.
func TestWalkFailsWholeAndLeavesNoReadBehind(t *testing.T) {
	idx := &slowIndex{n: 1000, failOn: 2}
	s := &Service{instances: idx}
	_, err := s.walk(t.Context(), []walkTarget{{serviceID: "svc", offering: "o"}}, "", MaxPageSize, nil)
	if err == nil {
		t.Fatal("a page with a failed read succeeded")
	}
	idx.mu.Lock()
	defer idx.mu.Unlock()
	if idx.now != 0 {
		t.Errorf("%d reads still running after the page failed", idx.now)
	}
}

// Entries that do not name their record (left by a provision that never
// committed, its ID provisioned again since) are not listed; a cursor the
// index never handed out is the client's mistake.
func TestWalkSkipsStaleEntriesAndRefusesMadeUpCursors(t *testing.T) {
	s := &Service{instances: &slowIndex{n: 5, stale: map[int]bool{1: true, 3: true}}}
	targets := []walkTarget{{serviceID: "svc", offering: "o"}}
	page, err := s.walk(t.Context(), targets, "", 10, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, v := range page.Instances {
		got = append(got, v.ID)
	}
	if fmt.Sprint(got) != "[i-0000 i-0002 i-0004]" {
		t.Errorf("listed %v, want the three entries that name their records", got)
	}
	_, err = s.walk(t.Context(), targets, pageCursor{scan: "made-up"}.String(), 10, nil)
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("a made-up index cursor: %v, want ErrInvalid", err)
	}
}
