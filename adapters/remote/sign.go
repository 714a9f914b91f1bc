package remote

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// MaxSkew is how far a request's timestamp may be from the adapter's
// clock. It bounds how long an adapter must remember signatures to reject
// replays, and how long a captured request stays usable.
const MaxSkew = 5 * time.Minute

// signaturePrefix versions the signature scheme within the header, so a
// v2 scheme can be sent alongside during a migration.
const signaturePrefix = "v1="

// signingString is what both sides feed to HMAC-SHA256. The nonce makes
// every attempt unique even within one second: without it two polls of
// the same operation, or a quick retry, would carry the same signature and
// be rejected as replays.
func signingString(method, requestURI, timestamp, nonce string, body []byte) string {
	sum := sha256.Sum256(body)
	return method + "\n" + requestURI + "\n" + timestamp + "\n" + nonce + "\n" + hex.EncodeToString(sum[:])
}

func computeSignature(secret []byte, method, requestURI, timestamp, nonce string, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(signingString(method, requestURI, timestamp, nonce, body)))
	return hex.EncodeToString(mac.Sum(nil))
}

func newNonce() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails: crypto/rand crashes the program instead
	return hex.EncodeToString(b[:])
}

// sign sets the timestamp, nonce and signature headers on req, whose body
// is body. Every attempt is signed afresh, retries included: the adapter
// rejects a signature it has seen before.
func sign(req *http.Request, secret []byte, body []byte, now time.Time) {
	ts := strconv.FormatInt(now.Unix(), 10)
	nonce := newNonce()
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderNonce, nonce)
	req.Header.Set(HeaderSignature, signaturePrefix+computeSignature(secret, req.Method, req.URL.RequestURI(), ts, nonce, body))
}

// verifier checks signatures for a Handler and remembers the ones it
// accepted, so that a captured request cannot be sent again.
type verifier struct {
	secret []byte
	now    func() time.Time

	mu sync.Mutex
	// seen maps an accepted signature to the moment its timestamp leaves
	// the skew window; after that the timestamp check rejects it anyway.
	seen      map[string]time.Time
	nextPrune time.Time
}

func newVerifier(secret string, now func() time.Time) *verifier {
	return &verifier{secret: []byte(secret), now: now, seen: map[string]time.Time{}}
}

// errAuth carries the reason an adapter gives in its 401 body. It never
// repeats the expected signature.
type errAuth struct{ reason string }

func (e *errAuth) Error() string { return e.reason }

// verify checks r (whose body is body) in the order the protocol fixes:
// the replay cache is consulted only for authentic requests, so forged
// ones cannot fill it.
func (v *verifier) verify(r *http.Request, body []byte) error {
	ts, nonce, sig := r.Header.Get(HeaderTimestamp), r.Header.Get(HeaderNonce), r.Header.Get(HeaderSignature)
	if ts == "" || nonce == "" || sig == "" {
		return &errAuth{fmt.Sprintf("missing signature: the %s, %s and %s headers are required", HeaderTimestamp, HeaderNonce, HeaderSignature)}
	}
	unix, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return &errAuth{fmt.Sprintf("%s is not a number of seconds since 1970", HeaderTimestamp)}
	}
	now := v.now()
	sent := time.Unix(unix, 0)
	if d := now.Sub(sent); d > MaxSkew || d < -MaxSkew {
		return &errAuth{fmt.Sprintf("stale timestamp: %s is %s away from the adapter's clock (at most %s allowed); check both clocks",
			HeaderTimestamp, d.Round(time.Second).Abs(), MaxSkew)}
	}
	got, ok := strings.CutPrefix(sig, signaturePrefix)
	want := computeSignature(v.secret, r.Method, requestURI(r), ts, nonce, body)
	if !ok || !hmac.Equal([]byte(got), []byte(want)) {
		return &errAuth{"bad signature: check that Agora and the adapter share the same secret"}
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.prune(now)
	if _, replayed := v.seen[got]; replayed {
		return &errAuth{"replayed request: this signature was already used"}
	}
	v.seen[got] = sent.Add(MaxSkew)
	return nil
}

// prune drops expired signatures, at most once a second: the cache holds
// at most the last ten minutes of accepted requests either way.
func (v *verifier) prune(now time.Time) {
	if now.Before(v.nextPrune) {
		return
	}
	v.nextPrune = now.Add(time.Second)
	for s, until := range v.seen {
		if now.After(until) {
			delete(v.seen, s)
		}
	}
}

// requestURI is the request target as the client sent it: the signed
// path, escaped as on the wire, with its query.
func requestURI(r *http.Request) string {
	if r.RequestURI != "" && strings.HasPrefix(r.RequestURI, "/") {
		return r.RequestURI
	}
	return r.URL.RequestURI()
}

var errNoSecret = errors.New("remote.Handler: HandlerOptions.Secret is empty: set it to the secret shared with Agora, " +
	"or set SkipSignature when the server authenticates Agora by mTLS")
