// Package zoo is a menagerie of small remote adapters, each broken in
// exactly one way, for the tests that prove the conformance kit catches
// the defect. They do real work on a real Redis (an ACL user per binding,
// confined to the instance's key prefix), so the kit can verify their
// credentials as it would a producer's. Test fixtures only: nothing
// outside a test imports this package.
package zoo

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"

	goredis "github.com/redis/go-redis/v9"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/adapters/remote"
)

// Defect is the one way a zoo adapter is broken; None is the correct one.
type Defect string

// The zoo. The first five break the contract in their answers; the last
// four break the transport, after the bind really happened, so the kit
// must also clean up what it never got an answer for.
const (
	None                      Defect = ""
	DeprovisionDeletesNothing Defect = "deprovision-deletes-nothing"
	UnbindRevokesNothing      Defect = "unbind-revokes-nothing"
	BindWithoutInstance       Defect = "bind-without-instance"
	CredentialsNeverWork      Defect = "credentials-never-work"
	SharedKeyspace            Defect = "shared-keyspace"
	Hang                      Defect = "hang"
	Garbage                   Defect = "garbage"
	HugeBody                  Defect = "huge-body"
	ClosesConnection          Defect = "closes-connection"
)

// Adapter keeps each instance's data under root:data:<instance>: and
// marks the instance with root:inst:<instance>.
type Adapter struct {
	admin *goredis.Client
	addr  string
	root  string
	// defect holds a Defect; Break changes it while the adapter serves.
	defect atomic.Value
}

// New returns the zoo adapter with defect, on the Redis that admin
// reaches at addr (host:port, what the credentials name). Every key and
// ACL user it makes starts with root.
func New(admin *goredis.Client, addr, root string, defect Defect) *Adapter {
	a := &Adapter{admin: admin, addr: addr, root: root}
	a.Break(defect)
	return a
}

// Break gives the running adapter another defect (None repairs it), as a
// live adapter breaks after its slice was approved: the calls from then
// on have it, and what earlier calls did stays.
func (a *Adapter) Break(d Defect) { a.defect.Store(d) }

// Defect is the adapter's defect now.
func (a *Adapter) Defect() Defect {
	d, _ := a.defect.Load().(Defect)
	return d
}

func (a *Adapter) marker(iid string) string    { return a.root + ":inst:" + iid }
func (a *Adapter) users(iid string) string     { return a.root + ":users:" + iid }
func (a *Adapter) prefix(iid string) string    { return a.root + ":data:" + iid + ":" }
func (a *Adapter) user(iid, bid string) string { return a.root + "-" + iid + "-" + bid }

// Provision marks the instance. It takes no parameters.
func (a *Adapter) Provision(ctx context.Context, req adapters.ProvisionRequest) (adapters.ProvisionResult, error) {
	if len(req.Parameters) > 0 {
		return adapters.ProvisionResult{}, adapters.InvalidParameters("this service takes no parameters")
	}
	if err := a.admin.Set(ctx, a.marker(req.InstanceID), "1", 0).Err(); err != nil {
		return adapters.ProvisionResult{}, fmt.Errorf("zoo: provision %s: %w", req.InstanceID, err)
	}
	return adapters.ProvisionResult{}, nil
}

// Deprovision removes the instance's users, keys and marker.
func (a *Adapter) Deprovision(ctx context.Context, req adapters.DeprovisionRequest) (adapters.DeprovisionResult, error) {
	n, err := a.admin.Exists(ctx, a.marker(req.InstanceID)).Result()
	if err != nil {
		return adapters.DeprovisionResult{}, err
	}
	users, err := a.admin.SMembers(ctx, a.users(req.InstanceID)).Result()
	if err != nil {
		return adapters.DeprovisionResult{}, err
	}
	if n == 0 && len(users) == 0 {
		return adapters.DeprovisionResult{}, fmt.Errorf("zoo: instance %s: %w", req.InstanceID, adapters.ErrNotFound)
	}
	if a.Defect() == DeprovisionDeletesNothing {
		return adapters.DeprovisionResult{}, nil
	}
	if err := delUsers(ctx, a.admin, users); err != nil {
		return adapters.DeprovisionResult{}, err
	}
	if err := a.deleteKeys(ctx, a.prefix(req.InstanceID)+"*"); err != nil {
		return adapters.DeprovisionResult{}, err
	}
	return adapters.DeprovisionResult{}, a.admin.Del(ctx, a.users(req.InstanceID), a.marker(req.InstanceID)).Err()
}

func (a *Adapter) deleteKeys(ctx context.Context, match string) error {
	iter := a.admin.Scan(ctx, 0, match, 100).Iterator()
	for iter.Next(ctx) {
		if err := a.admin.Del(ctx, iter.Val()).Err(); err != nil {
			return err
		}
	}
	return iter.Err()
}

// Bind creates an ACL user confined to the instance's key prefix.
func (a *Adapter) Bind(ctx context.Context, req adapters.BindRequest) (adapters.BindResult, error) {
	if a.Defect() != BindWithoutInstance {
		n, err := a.admin.Exists(ctx, a.marker(req.InstanceID)).Result()
		if err != nil {
			return adapters.BindResult{}, err
		}
		if n == 0 {
			return adapters.BindResult{}, fmt.Errorf("zoo: instance %s: %w", req.InstanceID, adapters.ErrNotFound)
		}
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	password := hex.EncodeToString(b[:])
	user, prefix := a.user(req.InstanceID, req.BindingID), a.prefix(req.InstanceID)
	keys := "~" + prefix + "*"
	if a.Defect() == SharedKeyspace {
		keys = "~" + a.root + ":data:*" // every instance's data
	}
	if err := a.admin.SAdd(ctx, a.users(req.InstanceID), user).Err(); err != nil {
		return adapters.BindResult{}, err
	}
	if err := a.admin.ACLSetUser(ctx, user, "reset", "on", ">"+password, keys, "resetchannels",
		"+get", "+set", "+del", "+ping", "+hello", "+auth").Err(); err != nil {
		return adapters.BindResult{}, fmt.Errorf("zoo: ACL SETUSER %s: %w", user, err)
	}
	if a.Defect() == CredentialsNeverWork {
		password = "not-" + password
	}
	host, port, _ := net.SplitHostPort(a.addr)
	return adapters.BindResult{Credentials: adapters.Typed(adapters.TypeRedis, map[string]any{
		"host": host, "port": port, "username": user, "password": password, "key_prefix": prefix,
		"uri": "redis://" + user + ":" + password + "@" + a.addr + "/0",
	})}, nil
}

// Unbind deletes the binding's user.
func (a *Adapter) Unbind(ctx context.Context, req adapters.UnbindRequest) (adapters.UnbindResult, error) {
	user := a.user(req.InstanceID, req.BindingID)
	removed, err := a.admin.SRem(ctx, a.users(req.InstanceID), user).Result()
	if err != nil {
		return adapters.UnbindResult{}, err
	}
	if a.Defect() == UnbindRevokesNothing {
		if removed == 0 {
			return adapters.UnbindResult{}, fmt.Errorf("zoo: binding %s: %w", req.BindingID, adapters.ErrNotFound)
		}
		return adapters.UnbindResult{}, nil
	}
	n, err := a.admin.ACLDelUser(ctx, user).Result()
	if err != nil {
		return adapters.UnbindResult{}, err
	}
	if n == 0 && removed == 0 {
		return adapters.UnbindResult{}, fmt.Errorf("zoo: binding %s: %w", req.BindingID, adapters.ErrNotFound)
	}
	return adapters.UnbindResult{}, nil
}

// Leftovers lists what the adapter's keys and users under root still
// hold: empty after every instance was deprovisioned.
func Leftovers(ctx context.Context, admin *goredis.Client, root string) ([]string, error) {
	keys, err := admin.Keys(ctx, root+":*").Result()
	if err != nil {
		return nil, err
	}
	users, err := admin.ACLUsers(ctx).Result()
	if err != nil {
		return nil, err
	}
	for _, u := range users {
		if strings.HasPrefix(u, root+"-") {
			keys = append(keys, "ACL user "+u)
		}
	}
	return keys, nil
}

// Remove deletes every key and user under root, whatever a defect left.
func Remove(ctx context.Context, admin *goredis.Client, root string) error {
	a := &Adapter{admin: admin, root: root}
	users, err := admin.ACLUsers(ctx).Result()
	if err != nil {
		return err
	}
	var mine []string
	for _, u := range users {
		if strings.HasPrefix(u, root+"-") {
			mine = append(mine, u)
		}
	}
	if err := delUsers(ctx, admin, mine); err != nil {
		return err
	}
	return a.deleteKeys(ctx, root+":*")
}

func delUsers(ctx context.Context, admin *goredis.Client, users []string) error {
	for _, u := range users {
		if err := admin.ACLDelUser(ctx, u).Err(); err != nil {
			return err
		}
	}
	return nil
}

// Handler serves the adapter over the remote protocol, signed with
// secret. The transport defects strike every bind after the adapter did
// its work, so the kit never sees the credentials it must clean up. The
// defect is read at every request, so Break takes effect at once.
func Handler(a *Adapter, secret string) http.Handler {
	h := remote.Handler(a, remote.HandlerOptions{Name: "zoo-" + string(a.Defect()), Version: "1", Secret: secret})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defect := a.Defect()
		switch defect {
		case Hang, Garbage, HugeBody, ClosesConnection:
		default:
			h.ServeHTTP(w, r)
			return
		}
		if r.Method != http.MethodPut || !strings.Contains(r.URL.Path, "/bindings/") {
			h.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if rec.Code != http.StatusOK {
			// A refused bind (instance not found) is answered honestly.
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			_, _ = w.Write(rec.Body.Bytes())
			return
		}
		switch defect {
		case Hang:
			<-r.Context().Done() // until Agora gives up
		case Garbage:
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte("<html>502 Bad Gateway</html>"))
		case HugeBody:
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"credentials": {"blob": "`))
			chunk := bytes.Repeat([]byte("a"), 1<<16)
			for range 1 << 10 { // 64 MiB, unless the client stops reading first
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
			_, _ = w.Write([]byte(`"}}`))
		case ClosesConnection:
			if hj, ok := w.(http.Hijacker); ok {
				if c, _, err := hj.Hijack(); err == nil {
					_ = c.Close()
				}
			}
		}
	})
}
