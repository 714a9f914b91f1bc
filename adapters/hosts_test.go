package adapters

import (
	"strings"
	"testing"
)

func TestCheckHost(t *testing.T) {
	tests := []struct{ host, wantErr string }{
		{host: "db.internal"},
		{host: "127.0.0.1"},
		{host: "::1"},
		{host: "fe80::1%eth0"},
		{host: "", wantErr: "required"},
		{host: "  ", wantErr: "required"},
		{host: "db.internal:5432", wantErr: "bare host name"},
		{host: "postgres://db", wantErr: "bare host name"},
		{host: "user@db", wantErr: "bare host name"},
		{host: "db/x", wantErr: "bare host name"},
		{host: "db?x=1", wantErr: "bare host name"},
		{host: "db#x", wantErr: "bare host name"},
		{host: "db internal", wantErr: "bare host name"},
	}
	for _, tt := range tests {
		err := CheckHost(tt.host)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("CheckHost(%q) = %v, want nil", tt.host, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("CheckHost(%q) = %v, want an error with %q", tt.host, err, tt.wantErr)
		}
	}
}
