package app

import (
	"context"
	"strings"
	"testing"

	"github.com/agora-osb/agora/internal/config"
)

func TestEgressPolicyRefusesAgorasOwnRedisAndVault(t *testing.T) {
	ctx := context.Background()
	cfg := config.Defaults()
	cfg.Redis.URL = "redis://127.0.0.1:6390/0"
	cfg.Redis.Addrs = []string{"127.0.0.2"}
	cfg.Vault.Addr = "https://127.0.0.3"
	cfg.Gate.Egress.Allow = []string{"127.0.0.0/8"}
	p, err := egressPolicy(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for u, want := range map[string]string{
		"http://127.0.0.1:6390":  "Agora's Redis",
		"http://127.0.0.2:6379":  "Agora's Redis", // an addr without a port is Redis's default
		"https://127.0.0.3/v1":   "Agora's Vault", // https without a port is 443
		"http://127.0.0.1:9091/": "",
	} {
		err := p.CheckURL(ctx, u)
		switch {
		case want == "" && err != nil:
			t.Errorf("%s: %v, want allowed (loopback is on the allow-list)", u, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%s: %v, want refused as %s", u, err, want)
		}
	}
	cfg.Gate.Egress.Allow = []string{"300.0.0.0/8"}
	if _, err := egressPolicy(ctx, cfg); err == nil {
		t.Error("a bad allow entry was accepted")
	}
}
