package metrics

import (
	"errors"
	"testing"
	"time"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/broker/catalog"
)

// fakeClock is a time the test moves by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func TestRecentAdapterCalls(t *testing.T) {
	ada := &catalog.Offering{Producer: "ada", Name: "ada-files"}
	bob := &catalog.Offering{Producer: "bob", Name: "bob-queues"}
	plan := &catalog.Plan{Name: "small"}
	type call struct {
		after time.Duration // since the previous step
		off   *catalog.Offering
		err   error
	}
	tests := []struct {
		name  string
		calls []call
		wait  time.Duration // after the last call, before reading
		want  map[*catalog.Offering]RecentCalls
	}{
		{name: "nothing called", want: map[*catalog.Offering]RecentCalls{ada: {}, bob: {}}},
		{
			name: "faults are the adapter's own failures, per offering",
			calls: []call{
				{off: ada}, {off: ada, err: adapters.Terminal(errors.New("quota"))}, {off: ada, err: errors.New("500")},
				{off: ada, err: adapters.InvalidParameters("size")}, {off: ada, err: adapters.ErrNotFound},
				{off: bob}, {off: bob, err: adapters.ErrNotSupported},
			},
			want: map[*catalog.Offering]RecentCalls{ada: {Calls: 5, Faults: 2}, bob: {Calls: 2}},
		},
		{
			name:  "calls older than the window are forgotten",
			calls: []call{{off: ada, err: errors.New("500")}, {after: 10 * time.Minute, off: ada}, {after: 6 * time.Minute, off: ada}},
			want:  map[*catalog.Offering]RecentCalls{ada: {Calls: 2}},
		},
		{
			name:  "a quiet quarter hour reads as no calls",
			calls: []call{{off: ada, err: errors.New("500")}},
			wait:  16 * time.Minute,
			want:  map[*catalog.Offering]RecentCalls{ada: {}},
		},
		{
			name: "a slot reused a lap later starts from zero",
			calls: []call{
				{off: ada, err: errors.New("500")}, {off: ada, err: errors.New("500")},
				{after: 15 * time.Minute, off: ada},
			},
			want: map[*catalog.Offering]RecentCalls{ada: {Calls: 1}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &fakeClock{t: time.Date(2030, 1, 1, 12, 0, 30, 0, time.UTC)}
			m := New(Sources{})
			m.recent = newRecentWindow(clock.now)
			for _, c := range tt.calls {
				clock.advance(c.after)
				m.AdapterCalled(c.off, plan, "provision", c.err, time.Millisecond)
			}
			clock.advance(tt.wait)
			for off, want := range tt.want {
				if got := m.RecentAdapterCalls(off.Producer, off.Name); got != want {
					t.Errorf("%s: got %+v, want %+v", off.Name, got, want)
				}
			}
		})
	}
	if got := New(Sources{}).RecentWindow(); got != 15*time.Minute {
		t.Errorf("window %s", got)
	}
}
