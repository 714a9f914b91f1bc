// Package audit writes the audit log: one JSON line per mutation on the
// OSB, producer and admin surfaces (repair actions included), saying when,
// who, what and with which result, quoting the request id.
//
// It learns of requests as an httpapi.Observer, so no surface can forget
// to audit: every request goes through the one edge.
//
// What it must never write: a secret, a credential, a token, or request
// parameters. It reads only requestinfo.Info, which the edge fills with
// identities and the IDs the path names, never with a body's content
// beyond the service and plan IDs.
package audit

import (
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/agora-osb/agora/broker/requestinfo"
)

// Record is one audit line.
type Record struct {
	Time time.Time `json:"time"`
	// Audit marks the line in a log stream shared with the access log.
	Audit     bool   `json:"audit"`
	RequestID string `json:"request_id"`
	Who       Who    `json:"who"`
	What      What   `json:"what"`
	Result    Result `json:"result"`
}

// Who made the change: the credential that authenticated it, and the
// platform user the platform says is behind it.
type Who struct {
	// Principal is "platform:<user>", "admin:<user>" or "producer:<name>"
	// (empty when authentication failed).
	Principal string `json:"principal,omitempty"`
	Platform  string `json:"platform,omitempty"`
	User      string `json:"user,omitempty"`
}

// What was changed.
type What struct {
	Surface string `json:"surface"`
	Action  string `json:"action"`
	Method  string `json:"method"`
	// Target is what the request named: instance and binding IDs, service
	// and plan IDs, a producer's name, a version.
	Target map[string]string `json:"target,omitempty"`
	// Offering and Plan are the catalog names of the service and plan IDs.
	Offering string `json:"offering,omitempty"`
	Plan     string `json:"plan,omitempty"`
	Producer string `json:"producer,omitempty"`
}

// Result is how it went.
type Result struct {
	Status    int    `json:"status"`
	ErrorCode string `json:"error_code,omitempty"`
	Owner     string `json:"owner,omitempty"`
}

// Names turns service and plan IDs into the catalog's names and the
// producer that owns them; ok false when the catalog does not know them.
type Names func(serviceID, planID string) (offering, plan, producer string, ok bool)

// Log is an httpapi.Observer that writes one Record per mutation.
type Log struct {
	mu    sync.Mutex
	enc   *json.Encoder
	names Names
	now   func() time.Time
}

// New returns a log writing JSON lines to w; names may be nil.
func New(w io.Writer, names Names) *Log {
	return &Log{enc: json.NewEncoder(w), names: names, now: time.Now}
}

// RequestDone implements httpapi.Observer: it records mutations, rejected
// ones included (a refused change is part of the trail), and skips reads.
func (l *Log) RequestDone(info *requestinfo.Info, method string, status int, _ time.Duration) {
	if info == nil || !mutation(info.Surface, method) {
		return
	}
	rec := Record{
		Time: l.now().UTC(), Audit: true, RequestID: info.ID,
		What:   What{Surface: string(info.Surface), Action: info.Endpoint, Method: method, Target: target(info)},
		Result: Result{Status: status},
	}
	if p := info.Principal; p.Kind != "" {
		rec.Who.Principal = string(p.Kind) + ":" + p.Name
	}
	if id := info.Originating; id != nil {
		rec.Who.Platform, rec.Who.User = id.Platform, id.UserID
	} else {
		rec.Who.Platform = info.Platform()
	}
	outcome := info.Outcome()
	rec.Result.ErrorCode, rec.Result.Owner = outcome.Code, outcome.Owner
	if l.names != nil {
		if off, plan, producer, ok := l.names(rec.What.Target["service_id"], rec.What.Target["plan_id"]); ok {
			rec.What.Offering, rec.What.Plan, rec.What.Producer = off, plan, producer
		}
	}
	if rec.What.Producer == "" && info.Surface != requestinfo.SurfaceOSB {
		rec.What.Producer = rec.What.Target["name"]
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	_ = l.enc.Encode(rec) // an audit sink that fails has nothing better to tell
}

func mutation(surface requestinfo.Surface, method string) bool {
	switch surface {
	case requestinfo.SurfaceOSB, requestinfo.SurfaceProducer, requestinfo.SurfaceAdmin:
	default:
		return false
	}
	return method != http.MethodGet && method != http.MethodHead && method != http.MethodOptions
}

// target is the request's resource plus the service and plan IDs its
// body named; nothing else of the body.
func target(info *requestinfo.Info) map[string]string {
	out := make(map[string]string, len(info.Resource)+2)
	for k, v := range info.Resource {
		out[k] = v
	}
	if b := info.Body; b != nil {
		if b.ServiceID != "" {
			out["service_id"] = b.ServiceID
		}
		if b.PlanID != "" {
			out["plan_id"] = b.PlanID
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
