package adapters

import (
	"strings"
	"testing"
)

// serverOffering embeds ServerSettings the way an adapter's Settings do.
type serverOffering struct {
	ServerSettings
	Mode string `json:"mode"`
}

func (s *serverOffering) ApplyDefaults() { s.FillDefaults(5432, "postgres") }

func TestServerSettings(t *testing.T) {
	s, _, err := DecodeConfig[serverOffering, struct{}](Config{
		Settings: JSONSettings([]byte(`{"host":"db.internal","admin_password":"pw","mode":"x"}`)),
	})
	if err != nil {
		t.Fatal(err)
	}
	want := serverOffering{ServerSettings{Host: "db.internal", Port: 5432, AdminUser: "postgres", AdminPassword: "pw"}, "x"}
	if s != want {
		t.Errorf("decoded %+v, want %+v", s, want)
	}
	if s.Addr() != "db.internal:5432" || s.AppHost() != "db.internal" {
		t.Errorf("Addr %q, AppHost %q", s.Addr(), s.AppHost())
	}
	s.PublicHost = "db.example.com"
	if s.AppHost() != "db.example.com" {
		t.Errorf("AppHost with a public host: %q", s.AppHost())
	}

	_, _, err = DecodeConfig[serverOffering, struct{}](Config{
		Settings: JSONSettings([]byte(`{"host":"db:5432","port":70000,"admin_user":" ","public_host":"http://x/","hots":"y"}`)),
	})
	for _, want := range []string{
		`config: json: unknown field "hots"`,
		`config: host: "db:5432" must be a bare host name`,
		"config: port: 70000 is not between 1 and 65535",
		"config: admin_user: must not be blank",
		`config: public_host: "http://x/" must be a bare host name`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}
