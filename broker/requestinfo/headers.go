package requestinfo

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
)

// Version is an X-Broker-API-Version, "<major>.<minor>".
type Version struct {
	Major, Minor int
}

// IsZero reports whether no version was sent.
func (v Version) IsZero() bool { return v == Version{} }

func (v Version) String() string { return strconv.Itoa(v.Major) + "." + strconv.Itoa(v.Minor) }

// AtLeast reports whether v is major.minor or later.
func (v Version) AtLeast(major, minor int) bool {
	return v.Major > major || (v.Major == major && v.Minor >= minor)
}

// ParseVersion accepts exactly "<digits>.<digits>".
func ParseVersion(s string) (Version, bool) {
	majorText, minorText, found := strings.Cut(s, ".")
	if !found || !allDigits(majorText) || !allDigits(minorText) {
		return Version{}, false
	}
	major, errMajor := strconv.Atoi(majorText)
	minor, errMinor := strconv.Atoi(minorText)
	return Version{major, minor}, errMajor == nil && errMinor == nil
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Platform names that the originating identity header defines.
const (
	PlatformCloudFoundry = "cloudfoundry"
	PlatformKubernetes   = "kubernetes"
)

// OriginatingIdentity is the platform user behind a request, from the
// X-Broker-API-Originating-Identity header. It is what the platform
// claims, authenticated only as far as the platform's broker credentials
// are: use it for audit and logs, not for authorization.
type OriginatingIdentity struct {
	// Platform is the first word of the header: "cloudfoundry",
	// "kubernetes", or anything else a platform sends.
	Platform string
	// UserID is Cloud Foundry's user_id or Kubernetes' username; empty for
	// other platforms and when the platform left it out.
	UserID string
	// Raw is the decoded JSON object, kept whole (Kubernetes' uid, groups
	// and extra; any other platform's properties).
	Raw map[string]any
}

// ParseOriginatingIdentity parses "<platform> <base64 of a JSON object>".
// The error says what is wrong without repeating the value, which is user
// data of unknown shape.
func ParseOriginatingIdentity(header string) (*OriginatingIdentity, error) {
	platform, value, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || platform == "" {
		return nil, errors.New(`want "<platform> <base64 JSON object>"`)
	}
	value = strings.TrimSpace(value)
	decoded, err := base64.StdEncoding.DecodeString(value)
	if err != nil {
		// Some clients drop the padding; accepting that costs nothing.
		var rawErr error
		if decoded, rawErr = base64.RawStdEncoding.DecodeString(value); rawErr != nil {
			return nil, fmt.Errorf("value is not base64: %w", err)
		}
	}
	var raw map[string]any
	if err := json.Unmarshal(decoded, &raw); err != nil {
		return nil, fmt.Errorf("value is not a JSON object: %w", err)
	}
	if raw == nil { // the JSON literal null
		return nil, errors.New("value is not a JSON object: null")
	}
	id := &OriginatingIdentity{Platform: platform, Raw: raw}
	switch platform {
	case PlatformCloudFoundry:
		id.UserID, _ = raw["user_id"].(string)
	case PlatformKubernetes:
		id.UserID, _ = raw["username"].(string)
	}
	return id, nil
}

// NewID returns a random version-4 UUID for a request the platform sent
// without an identity. A request id names a request in logs and answers;
// it guards nothing, so math/rand/v2's generator (ChaCha8, seeded by the
// runtime from the OS, per thread) serves: crypto/rand cost a getrandom
// system call on every such request.
func NewID() string {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[0:8], rand.Uint64())
	binary.LittleEndian.PutUint64(b[8:16], rand.Uint64())
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

// maxQuoted bounds how much of a client's value an answer repeats.
const maxQuoted = 80

// Quote repeats a value the client sent, truncated, so an error names what
// was wrong without echoing a megabyte back. Never use it on parameters:
// they may hold secrets.
func Quote(s string) string {
	if len(s) > maxQuoted {
		cut := maxQuoted
		for cut > 0 && s[cut]&0xC0 == 0x80 { // do not split a UTF-8 sequence
			cut--
		}
		s = s[:cut] + "..."
	}
	return strconv.Quote(s)
}
