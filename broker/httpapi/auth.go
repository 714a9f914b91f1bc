package httpapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"

	"github.com/agora-osb/agora/broker/requestinfo"
)

// Credential is one basic-auth pair. Several pairs are accepted at once so
// they can be rotated without downtime.
type Credential struct {
	Username string
	Password string
}

// BasicAuth checks basic-auth pairs. It keeps sha256 digests only, so the
// comparison is of fixed length and leaks neither the length nor the
// content of a configured secret.
type BasicAuth struct {
	pairs []credentialDigest
}

type credentialDigest struct {
	username, password [sha256.Size]byte
}

// NewBasicAuth returns a checker for creds.
func NewBasicAuth(creds []Credential) *BasicAuth {
	a := &BasicAuth{pairs: make([]credentialDigest, len(creds))}
	for i, c := range creds {
		a.pairs[i] = credentialDigest{sha256.Sum256([]byte(c.Username)), sha256.Sum256([]byte(c.Password))}
	}
	return a
}

// Match compares against every pair without stopping early, so the time
// taken does not reveal which pair (or which half) matched.
func (a *BasicAuth) Match(username, password string) bool {
	u := sha256.Sum256([]byte(username))
	p := sha256.Sum256([]byte(password))
	match := 0
	for _, c := range a.pairs {
		match |= subtle.ConstantTimeCompare(u[:], c.username[:]) & subtle.ConstantTimeCompare(p[:], c.password[:])
	}
	return match == 1
}

// Request authenticates r's basic-auth header and, on success, records
// the principal on the request's Info.
func (a *BasicAuth) Request(r *http.Request, kind requestinfo.PrincipalKind) bool {
	return a.authenticate(r, requestinfo.From(r.Context()), kind)
}

// authenticate is Request with the Info at hand (the fast paths').
func (a *BasicAuth) authenticate(r *http.Request, info *requestinfo.Info, kind requestinfo.PrincipalKind) bool {
	username, password, ok := r.BasicAuth()
	if !ok || !a.Match(username, password) {
		return false
	}
	if info != nil {
		info.Principal = requestinfo.Principal{Kind: kind, Name: username}
	}
	return true
}

// RequireBasic is the auth middleware of a surface that takes basic auth:
// a request without a matching pair gets 401 and goes no further.
func RequireBasic(a *BasicAuth, kind requestinfo.PrincipalKind, realm, what string) Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !a.Request(r, kind) {
				denyBasic(w, r, realm, what)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// denyBasic is the 401 of a request without a matching pair.
func denyBasic(w http.ResponseWriter, r *http.Request, realm, what string) {
	w.Header().Set("WWW-Authenticate", `Basic realm="`+realm+`"`)
	WriteError(w, r, http.StatusUnauthorized, "", "missing or wrong "+what+" (HTTP basic auth)")
}
