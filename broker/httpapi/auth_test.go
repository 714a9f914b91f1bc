package httpapi

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/agora-osb/agora/broker/requestinfo"
)

func requestWithAuthorization(header string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/v2/catalog", nil)
	if header != "" {
		r.Header.Set("Authorization", header)
	}
	return r
}

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// Remembering accepted headers must never let a wrong one in, and must
// name each pair's own user, whichever was seen first.
func TestBasicAuthRemembersOnlyWhatMatched(t *testing.T) {
	a := NewBasicAuth([]Credential{{"cf", "s3cret"}, {"korifi", "other"}})
	tests := []struct {
		header string
		user   string // "" for refused
	}{
		{basic("cf", "wrong"), ""},
		{basic("cf", "s3cret"), "cf"},
		{basic("cf", "s3cret"), "cf"},
		{basic("cf", "s3cre"), ""},
		{basic("cf", "s3cret") + "x", ""},
		{basic("korifi", "other"), "korifi"},
		{"basic " + base64.StdEncoding.EncodeToString([]byte("korifi:other")), "korifi"},
		{basic("korifi", "s3cret"), ""},
		{"", ""},
		{"Bearer x", ""},
		{basic("korifi", "other"), "korifi"},
		{basic("cf", "s3cret"), "cf"},
	}
	for i, tt := range tests {
		info := &requestinfo.Info{}
		ok := a.authenticate(requestWithAuthorization(tt.header), info, requestinfo.PrincipalPlatform)
		if ok != (tt.user != "") || info.Principal.Name != tt.user {
			t.Errorf("%d: %q: accepted %v as %q, want user %q", i, tt.header, ok, info.Principal.Name, tt.user)
		}
	}
}

// A header seen before is recognised without decoding or digesting it:
// no allocation at all, where r.BasicAuth decodes into new strings.
func TestBasicAuthRecognisesAnAcceptedHeaderCheaply(t *testing.T) {
	a := NewBasicAuth([]Credential{{"cf", "s3cret"}})
	r := requestWithAuthorization(basic("cf", "s3cret"))
	info := &requestinfo.Info{}
	if !a.authenticate(r, info, requestinfo.PrincipalPlatform) {
		t.Fatal("refused the right pair")
	}
	if n := testing.AllocsPerRun(100, func() { a.authenticate(r, info, requestinfo.PrincipalPlatform) }); n != 0 {
		t.Errorf("an accepted header costs %.0f allocations, want 0 (not recognised?)", n)
	}
}

// Only so many spellings are remembered; the rest are still checked in
// full, and accepted.
func TestBasicAuthBoundsWhatItRemembers(t *testing.T) {
	a := NewBasicAuth([]Credential{{"cf", "s3cret"}})
	encoded := base64.StdEncoding.EncodeToString([]byte("cf:s3cret"))
	for i := range 2 * maxAccepted {
		// Schemes are case-insensitive: every spelling is a new header.
		header := fmt.Sprintf("%s %s", []string{"Basic", "basic", "BASIC", "bAsic", "baSic", "basIc", "basiC", "BAsic", "BaSic", "BasIc", "BasiC", "bASic", "bAsIc", "bAsiC", "baSIc", "baSiC"}[i], encoded)
		if !a.authenticate(requestWithAuthorization(header), nil, requestinfo.PrincipalPlatform) {
			t.Fatalf("refused %q", header)
		}
	}
	if n := len(*a.accepted.Load()); n != maxAccepted {
		t.Errorf("remembers %d headers, want at most %d", n, maxAccepted)
	}
}
