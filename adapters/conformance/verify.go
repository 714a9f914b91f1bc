package conformance

import (
	"context"
	"slices"

	"github.com/agora-osb/agora/adapters"
)

// Verifier uses one type of credentials as a bound application would;
// package credcheck has the kit's own. Each method gets its own deadline
// through ctx and must honour it.
type Verifier interface {
	// Works connects with creds and does one harmless write and read
	// inside the instance's own space (its database, vhost, key prefix or
	// KV path). It returns an error saying what did not work.
	Works(ctx context.Context, creds map[string]any) error
	// Revoked returns nil when the backend refuses creds. It returns an
	// error when they still work, or when it cannot tell (the backend did
	// not answer): an unreachable server proves nothing.
	Revoked(ctx context.Context, creds map[string]any) error
	// Isolated writes with b in b's own space, then returns nil when the
	// holder of a can neither read nor write it; an error says what a
	// reached. a and b belong to different instances.
	Isolated(ctx context.Context, a, b map[string]any) error
}

// TypeOf returns the credentials' type key, or "" when there is none.
func TypeOf(creds map[string]any) string {
	t, _ := creds[adapters.CredentialsTypeKey].(string)
	return t
}

// noType names credentials without a type key in Report.Unverified.
const noType = "(none)"

// credUse is how the run uses one binding's credentials: the Check
// functions of Options where set, else the verifier of their type. A nil
// function means the kit cannot do that with these credentials.
type credUse struct {
	typ      string
	typed    bool // the functions come from a verifier, not Options
	works    func(ctx context.Context, creds map[string]any) error
	revoked  func(ctx context.Context, creds map[string]any) error
	isolated func(ctx context.Context, a, b map[string]any) error
}

func (r *runner) use(creds map[string]any) credUse {
	u := credUse{typ: TypeOf(creds)}
	if u.typ == "" {
		u.typ = noType
	}
	u.works, u.revoked, u.isolated = r.opts.CheckCredentials, r.opts.CheckRevoked, r.opts.CheckIsolation
	if v, ok := r.opts.Verifiers[TypeOf(creds)]; ok && v != nil {
		u.typed = true
		if u.works == nil {
			u.works = v.Works
		}
		if u.revoked == nil {
			u.revoked = v.Revoked
		}
		if u.isolated == nil {
			u.isolated = v.Isolated
		}
	}
	return u
}

// unverified notes that the run could not use credentials of typ and
// returns the SKIP line that says so.
func (r *runner) unverified(typ string) verdict {
	r.mu.Lock()
	if !slices.Contains(r.unverifiedSeen, typ) {
		r.unverifiedSeen = append(r.unverifiedSeen, typ)
	}
	r.mu.Unlock()
	if typ == noType {
		return skip("unverified: type %s: %s", typ, r.say(wordsNoType))
	}
	return skip("unverified: type %s: %s", typ, r.say(wordsUnknownType))
}

func (r *runner) unverifiedTypes() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.unverifiedSeen)
}

// usedBy names who used the credentials, for a failure's hint.
func (r *runner) usedBy(u credUse) string {
	if u.typed {
		return sayf(r, wordsTypedVerifier, u.typ)
	}
	return hintCallback
}
