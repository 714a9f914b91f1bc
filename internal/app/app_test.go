package app

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

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
