package app

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/agora-osb/agora/internal/config"
)

func TestLoggerWritesHumanDurations(t *testing.T) {
	for _, format := range []string{"json", "text"} {
		var buf bytes.Buffer
		NewLogger(&buf, "info", format).Info("retrying", "backoff", 1500*time.Millisecond)
		if !strings.Contains(buf.String(), "1.5s") {
			t.Errorf("%s log %q does not say 1.5s", format, buf.String())
		}
		if format == "json" {
			var rec map[string]any
			if err := json.Unmarshal(buf.Bytes(), &rec); err != nil || rec["backoff"] != "1.5s" {
				t.Errorf("json record %v (%v)", rec, err)
			}
		}
	}
}

func TestRedisDescriptionNeverShowsThePassword(t *testing.T) {
	tests := []struct {
		cfg  config.Redis
		want string
	}{
		{config.Redis{URL: "redis://user:hunter2@10.0.0.5:6380/3"}, "10.0.0.5:6380 db 3"},
		{config.Redis{Addrs: []string{"a:1", "b:2"}, MasterName: "mymaster", Password: "hunter2"}, `sentinel a:1,b:2 master "mymaster"`},
		{config.Redis{Addrs: []string{"a:1", "b:2", "c:3"}, Password: "hunter2"}, "cluster a:1,b:2,c:3"},
	}
	for _, tt := range tests {
		got := RedisDescription(tt.cfg)
		if got != tt.want || strings.Contains(got, "hunter2") {
			t.Errorf("RedisDescription(%+v) = %q, want %q", tt.cfg, got, tt.want)
		}
	}
}

// Agora speaks RESP2 unless told otherwise, on every kind of deployment.
func TestRedisClientSpeaksRESP2ByDefault(t *testing.T) {
	tests := []struct {
		cfg  config.Redis
		want int
	}{
		{config.Redis{URL: "redis://127.0.0.1:6379/0"}, 2},
		{config.Redis{URL: "redis://127.0.0.1:6379/0?protocol=3"}, 3},
		{config.Redis{URL: "redis://127.0.0.1:6379/0", Protocol: 3}, 3},
		{config.Redis{URL: "redis://127.0.0.1:6379/0?protocol=2", Protocol: 3}, 2},
		{config.Redis{Addrs: []string{"127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"}}, 2},
		{config.Redis{Addrs: []string{"127.0.0.1:1", "127.0.0.1:2"}, MasterName: "m", Protocol: 3}, 3},
	}
	for _, tt := range tests {
		rdb, err := RedisClient(tt.cfg, 0)
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		switch c := rdb.(type) {
		case *redis.Client:
			got = c.Options().Protocol
		case *redis.ClusterClient:
			got = c.Options().Protocol
		default:
			t.Fatalf("%+v: unexpected client %T", tt.cfg, rdb)
		}
		rdb.Close()
		if got != tt.want {
			t.Errorf("%+v: protocol %d, want %d", tt.cfg, got, tt.want)
		}
	}
}
