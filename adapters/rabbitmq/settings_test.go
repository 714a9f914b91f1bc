package rabbitmq

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/agora-osb/agora/adapters"
)

func TestSettingsValidation(t *testing.T) {
	const valid = `{"management_url":"http://127.0.0.1:15672","admin_user":"guest","admin_password":"guest","amqp_host":"127.0.0.1","amqp_port":5672,"public_host":""}`
	tests := []struct {
		name     string
		settings string
		plan     string
		wantErrs []string // every one must appear in the single error
	}{
		{name: "valid", settings: valid, plan: `{"max_connections":10,"max_queues":20}`},
		{name: "valid without limits", settings: valid, plan: `{}`},
		{
			name:     "unknown field",
			settings: `{"management_url":"http://127.0.0.1:15672","admin_user":"guest","admin_password":"guest","amqp_host":"127.0.0.1","amqp_port":5672,"vhost":"/"}`,
			plan:     `{}`,
			wantErrs: []string{`unknown field "vhost"`},
		},
		{
			name:     "port as a string",
			settings: `{"management_url":"http://127.0.0.1:15672","admin_user":"guest","admin_password":"guest","amqp_host":"127.0.0.1","amqp_port":"5672"}`,
			plan:     `{}`,
			wantErrs: []string{"amqp_port"},
		},
		{
			name:     "all problems at once",
			settings: `{"management_url":"ftp://admin:pw@host:15672","admin_user":"","admin_password":"vault:secret/rabbit#password","amqp_host":"amqp://x","amqp_port":70000,"public_host":"mq.example.com:5672"}`,
			plan:     `{"max_connections":0,"max_queues":-1}`,
			wantErrs: []string{
				"management_url: scheme", "management_url: must not contain credentials",
				"admin_user: required", "admin_password: looks like an unresolved vault",
				"amqp_host:", "amqp_port: 70000", "public_host:",
				"max_connections: 0", "max_queues: -1",
			},
		},
		{
			name:     "missing required",
			settings: `{}`,
			plan:     `{"max_queue":1}`,
			wantErrs: []string{"management_url: required", "admin_user: required", "admin_password: required", "amqp_host: required", "amqp_port: 0", `plans[0] (standard): json: unknown field "max_queue"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Factory().New(context.Background(), adapters.Config{
				Offering: "rabbitmq",
				Logger:   slog.New(slog.DiscardHandler),
				Settings: adapters.JSONSettings([]byte(tt.settings)),
				Plans:    []adapters.PlanConfig{{Plan: adapters.Plan{ID: "p1", Name: "standard"}, Settings: adapters.JSONSettings([]byte(tt.plan))}},
			})
			if len(tt.wantErrs) == 0 {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("New accepted invalid config; want errors %q", tt.wantErrs)
			}
			for _, want := range tt.wantErrs {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error lacks %q:\n%v", want, err)
				}
			}
			if strings.Contains(err.Error(), "admin:pw") {
				t.Errorf("error repeats the credentials from the URL: %v", err)
			}
		})
	}
}

func TestPublicHostInCredentials(t *testing.T) {
	s := testSettings("http://127.0.0.1:15672/")
	s["public_host"] = "mq.example.com"
	a := newTestAdapter(t, s)
	if a.host != "mq.example.com" || a.managementURL != "http://mq.example.com:15672/" {
		t.Errorf("host %q, management_url %q: want the public host in both", a.host, a.managementURL)
	}
}

func TestNames(t *testing.T) {
	if got := vhostName("6f1c2b1e-8d2a-4c3b-9e4f-0a1b2c3d4e5f"); got != "agora-6f1c2b1e8d2a4c3b9e4f0a1b2c3d4e5f" {
		t.Errorf("vhostName = %q", got)
	}
	if strings.HasPrefix(bindingUserName("a-b", "c"), instanceUserPrefix("a")) {
		t.Error("instance a's user prefix matches a user of instance a-b")
	}
	if got := path("vhosts", "a/b c"); got != "vhosts/a%2Fb%20c" {
		t.Errorf("path = %q, want the vhost name escaped as one segment", got)
	}
}
