package httpapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"hash/maphash"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"

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

	// accepted holds Authorization headers that matched a pair: a
	// platform sends the same one on every request, and recognising it
	// by a keyed hash costs a fraction of decoding it and digesting both
	// halves (1.3% of a catalog request's CPU in make bench). Only a
	// header that matched gets in, and at most maxAccepted of them. The
	// list is replaced, never changed, so reads take no lock.
	accepted atomic.Pointer[[]acceptedHeader]
	mu       sync.Mutex // serialises additions to accepted
	seed     maphash.Seed
}

type credentialDigest struct {
	username, password [sha256.Size]byte
}

type acceptedHeader struct {
	sum              uint64 // maphash of header under seed
	header, username string
}

// maxAccepted bounds the accepted headers: one per configured pair in
// practice, a few more for clients that spell the scheme differently.
const maxAccepted = 8

// NewBasicAuth returns a checker for creds.
func NewBasicAuth(creds []Credential) *BasicAuth {
	a := &BasicAuth{pairs: make([]credentialDigest, len(creds)), seed: maphash.MakeSeed()}
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
	header := headerValue(r.Header, "Authorization") // what r.BasicAuth reads
	username, ok := a.recognise(header)
	if !ok {
		var password string
		username, password, ok = r.BasicAuth()
		if !ok || !a.Match(username, password) {
			return false
		}
		a.accept(header, username)
	}
	if info != nil {
		info.Principal = requestinfo.Principal{Kind: kind, Name: username}
	}
	return true
}

// recognise returns the username of an Authorization header that matched
// before. The header is compared only when its keyed hash matches one
// that was accepted: the seed is secret, so a wrong header reaches the
// comparison (whose time depends on the content) with odds of 2^-64, and
// otherwise goes on to Match, whose time does not.
func (a *BasicAuth) recognise(header string) (string, bool) {
	list := a.accepted.Load()
	if list == nil || header == "" {
		return "", false
	}
	sum := maphash.String(a.seed, header)
	for _, h := range *list {
		if h.sum == sum && h.header == header {
			return h.username, true
		}
	}
	return "", false
}

// accept remembers a header that matched, while there is room.
func (a *BasicAuth) accept(header, username string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var list []acceptedHeader
	if old := a.accepted.Load(); old != nil {
		list = *old
	}
	if len(list) >= maxAccepted {
		return
	}
	for _, h := range list {
		if h.header == header {
			return
		}
	}
	next := append(slices.Clip(list), acceptedHeader{sum: maphash.String(a.seed, header), header: header, username: username})
	a.accepted.Store(&next)
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
