package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/pivotal-cf/brokerapi/v11/middlewares"
)

const (
	headerRequestID           = "X-Broker-API-Request-Identity"
	headerOriginatingIdentity = "X-Broker-API-Originating-Identity"

	platformCloudFoundry = "cloudfoundry"
	platformKubernetes   = "kubernetes"
)

// ctxKey is unexported so no other package can collide with, or forge, our
// context values.
type ctxKey int

const (
	requestIDKey ctxKey = iota
	originatingIdentityKey
)

// RequestID returns the X-Broker-API-Request-Identity of the request ctx
// belongs to: the platform's value, or the one generated here when the
// platform sent none. Quote it in error descriptions so an app developer's
// report can be matched to the log. It returns "" outside a /v2 request.
func RequestID(ctx context.Context) string {
	if id, ok := ctx.Value(requestIDKey).(string); ok {
		return id
	}
	// A context that went only through brokerapi's own middleware (in a test
	// of package broker, say) still carries the header value there.
	if id, ok := ctx.Value(middlewares.RequestIdentityKey).(string); ok {
		return id
	}
	return ""
}

// newRequestID returns a random version-4 UUID. crypto/rand.Read never fails
// since Go 1.24 (it crashes the program instead), so there is no error path.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:36], b[10:16])
	return string(out[:])
}

// OriginatingIdentity is the platform user behind a request, from the
// X-Broker-API-Originating-Identity header. It is what the platform claims,
// authenticated only as far as the platform's broker credentials are: use it
// for audit and logs, not for authorization.
type OriginatingIdentity struct {
	// Platform is the first word of the header: "cloudfoundry",
	// "kubernetes", or anything else a platform sends.
	Platform string
	// UserID is Cloud Foundry's user_id or Kubernetes' username; empty for
	// other platforms and when the platform left it out.
	UserID string
	// Raw is the decoded JSON object, kept whole (Kubernetes' uid, groups and
	// extra; any other platform's properties).
	Raw map[string]any
}

// OriginatingIdentityFrom returns the originating identity of the request
// ctx belongs to. ok is false when the header was absent or malformed; a
// malformed header is logged, never rejected, as the OSB spec asks.
func OriginatingIdentityFrom(ctx context.Context) (OriginatingIdentity, bool) {
	id, ok := ctx.Value(originatingIdentityKey).(OriginatingIdentity)
	return id, ok
}

// parseOriginatingIdentity parses "<platform> <base64 of a JSON object>".
func parseOriginatingIdentity(header string) (OriginatingIdentity, error) {
	platform, value, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || platform == "" {
		return OriginatingIdentity{}, errors.New(`want "<platform> <base64 JSON object>"`)
	}
	value = strings.TrimSpace(value)
	decoded, err := base64.StdEncoding.DecodeString(value)
	if err != nil {
		// Some clients drop the padding; accepting that costs nothing.
		var rawErr error
		if decoded, rawErr = base64.RawStdEncoding.DecodeString(value); rawErr != nil {
			return OriginatingIdentity{}, fmt.Errorf("value is not base64: %w", err)
		}
	}
	var raw map[string]any
	if err := json.Unmarshal(decoded, &raw); err != nil {
		return OriginatingIdentity{}, fmt.Errorf("value is not a JSON object: %w", err)
	}
	if raw == nil { // the JSON literal null
		return OriginatingIdentity{}, errors.New("value is not a JSON object: null")
	}
	id := OriginatingIdentity{Platform: platform, Raw: raw}
	switch platform {
	case platformCloudFoundry:
		id.UserID, _ = raw["user_id"].(string)
	case platformKubernetes:
		id.UserID, _ = raw["username"].(string)
	}
	return id, nil
}
