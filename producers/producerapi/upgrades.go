package producerapi

import (
	"context"
	"errors"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/agora-osb/agora/broker"
	"github.com/agora-osb/agora/broker/httpapi"
	"github.com/agora-osb/agora/producers"
)

// Upgrades is what the upgrade routes ask the broker to do (bulk upgrades
// of a plan's instances to its published maintenance_info version, see
// docs/upgrades.md). producer, when set, restricts the call to her
// offerings and runs.
type Upgrades interface {
	StartUpgrade(ctx context.Context, req broker.UpgradeRequest, producer, startedBy string) (*broker.Upgrade, error)
	GetUpgrade(ctx context.Context, id, producer string) (*broker.Upgrade, error)
	RetryUpgrade(ctx context.Context, id, producer string) (*broker.Upgrade, error)
}

// StartUpgradeRequest is what starts a run. Offering and Plan travel in
// the route's path (so the audit line names them), never in the body.
type StartUpgradeRequest struct {
	Offering    string   `json:"-"`
	Plan        string   `json:"-"`
	InstanceIDs []string `json:"instance_ids,omitempty"`
	Concurrency int      `json:"concurrency,omitempty"`
	DryRun      bool     `json:"dry_run,omitempty"`
}

// upgradeRoutes are the bulk upgrade routes:
//
//	POST /producers/{name}/offerings/{offering}/plans/{plan}/upgrades  start (or dry-run) a run of her plan
//	GET  /producers/{name}/upgrades/{id}                               progress and per-instance outcomes
//	POST /producers/{name}/upgrades/{id}/retry                         failed instances again
//	POST /admin/offerings/{offering}/plans/{plan}/upgrades             any producer's plan
//	GET  /admin/upgrades/{id}
//	POST /admin/upgrades/{id}/retry
func (a *API) upgradeRoutes(producer, admin func(endpoint, method, path string, h handlerFunc) httpapi.Route) []httpapi.Route {
	return []httpapi.Route{
		producer("start_upgrade", http.MethodPost, "/offerings/{offering}/plans/{plan}/upgrades", a.startUpgrade(true)),
		producer("upgrade", http.MethodGet, "/upgrades/{id}", a.upgrade(true, false)),
		producer("retry_upgrade", http.MethodPost, "/upgrades/{id}/retry", a.upgrade(true, true)),
		admin("start_upgrade", http.MethodPost, "/offerings/{offering}/plans/{plan}/upgrades", a.startUpgrade(false)),
		admin("upgrade", http.MethodGet, "/upgrades/{id}", a.upgrade(false, false)),
		admin("retry_upgrade", http.MethodPost, "/upgrades/{id}/retry", a.upgrade(false, true)),
	}
}

func (a *API) startUpgrade(ofProducer bool) handlerFunc {
	// ofProducer: the route is the producer's, and the run must be of one
	// of her offerings.
	return func(w http.ResponseWriter, r *http.Request, who caller) {
		if a.upgrades == nil {
			a.writeErr(w, r, producers.Unavailable(nil, "bulk upgrades are not configured on this Agora"))
			return
		}
		var req StartUpgradeRequest
		if r.ContentLength != 0 && !a.decode(w, r, &req) {
			return
		}
		vars := mux.Vars(r)
		req.Offering, req.Plan = vars["offering"], vars["plan"]
		producer := ""
		if ofProducer {
			producer = vars["name"]
		}
		u, err := a.upgrades.StartUpgrade(r.Context(), broker.UpgradeRequest{
			Offering: req.Offering, Plan: req.Plan, InstanceIDs: req.InstanceIDs, Concurrency: req.Concurrency, DryRun: req.DryRun,
		}, producer, who.author())
		status := http.StatusAccepted
		if req.DryRun {
			status = http.StatusOK
		}
		a.respond(w, r, status, u, upgradeError(err))
	}
}

func (a *API) upgrade(ofProducer, retry bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, _ caller) {
		if a.upgrades == nil {
			a.writeErr(w, r, producers.Unavailable(nil, "bulk upgrades are not configured on this Agora"))
			return
		}
		producer := ""
		if ofProducer {
			producer = mux.Vars(r)["name"]
		}
		id := mux.Vars(r)["id"]
		var u *broker.Upgrade
		var err error
		if retry {
			u, err = a.upgrades.RetryUpgrade(r.Context(), id, producer)
		} else {
			u, err = a.upgrades.GetUpgrade(r.Context(), id, producer)
		}
		a.respond(w, r, http.StatusOK, u, upgradeError(err))
	}
}

// upgradeError words the broker's refusals for the API.
func upgradeError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, broker.ErrUpgradeForbidden):
		return &producers.Error{Kind: producers.ErrForbidden, Message: err.Error(), Cause: err}
	case errors.Is(err, broker.ErrUpgradeRefused):
		return &producers.Error{Kind: producers.ErrConflict, Message: err.Error(), Cause: err}
	case errors.Is(err, broker.ErrNotFound):
		return &producers.Error{Kind: producers.ErrNotFound, Message: err.Error(), Cause: err}
	}
	return producers.Unavailable(err, "the bulk upgrade could not be read or recorded (Redis); nothing changed, retry shortly")
}

// StartUpgrade starts (or, with DryRun, lists) a bulk upgrade of
// req.Offering's req.Plan: as producer with her token, or, with producer
// "", as the admin.
func (c *Client) StartUpgrade(ctx context.Context, producer string, req StartUpgradeRequest) (*broker.Upgrade, error) {
	var out broker.Upgrade
	path := "/admin"
	if producer != "" {
		path = "/producers/" + seg(producer)
	}
	path += "/offerings/" + seg(req.Offering) + "/plans/" + seg(req.Plan) + "/upgrades"
	return &out, c.doJSON(ctx, http.MethodPost, path, req, &out)
}

// Upgrade reads a bulk upgrade's progress and per-instance outcomes.
func (c *Client) Upgrade(ctx context.Context, producer, id string) (*broker.Upgrade, error) {
	var out broker.Upgrade
	return &out, c.doJSON(ctx, http.MethodGet, upgradePath(producer, id), nil, &out)
}

// RetryUpgrade starts a bulk upgrade's failed instances again.
func (c *Client) RetryUpgrade(ctx context.Context, producer, id string) (*broker.Upgrade, error) {
	var out broker.Upgrade
	return &out, c.doJSON(ctx, http.MethodPost, upgradePath(producer, id)+"/retry", nil, &out)
}

func upgradePath(producer, id string) string {
	if producer == "" {
		return "/admin/upgrades/" + seg(id)
	}
	return "/producers/" + seg(producer) + "/upgrades/" + seg(id)
}
