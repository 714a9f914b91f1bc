package main

import (
	"testing"

	"github.com/agora-osb/agora/broker/redisstore"
)

// A slowlog entry counts as a stall only when its keys are all one
// instance's own; anything spanning instances is where growth shows.
func TestOnlyInstanceKeys(t *testing.T) {
	store := redisstore.New(nil, keyPrefix)
	for _, c := range []struct {
		args []string
		want bool
	}{
		{[]string{"hgetall", "agora-scale:{i-1}:bindings"}, true},
		{[]string{"get", "agora-scale:{i-1}:status"}, true},
		{[]string{"evalsha", "abc", "2", "agora-scale:{i-1}:instance", "agora-scale:{i-1}:ops", "arg"}, true},
		{[]string{"evalsha", "abc", "2", "agora-scale:{i-1}:instance", "agora-scale:{jobs}:stream"}, false},
		{[]string{"evalsha", "abc", "3", "agora-scale:{i-1}:instance"}, false}, // keys cut off by the slowlog
		{[]string{"zrange", "agora-scale:offering:{svc}:by-creation", "-", "+"}, false},
		{[]string{"hgetall", "agora-scale:{expiries}:bindings"}, false},
		{[]string{"del", "agora-scale:{i-1}:lock", "agora-scale:counts"}, false},
		{[]string{"hgetall"}, false},
	} {
		if got := onlyInstanceKeys(store, c.args[0], c.args); got != c.want {
			t.Errorf("%v: %v, want %v", c.args, got, c.want)
		}
	}
}
