package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/agora-osb/agora/adapters"
)

// Inspect implements adapters.Inspector: the instance is its vhost, named
// from the instance ID.
func (a *Adapter) Inspect(ctx context.Context, req adapters.InspectRequest) (adapters.InspectResult, error) {
	vhost := vhostName(req.InstanceID)
	err := a.api.call(ctx, http.MethodGet, path("vhosts", vhost), nil, nil)
	switch {
	case errors.Is(err, adapters.ErrNotFound):
		return adapters.InspectResult{Detail: "vhost " + vhost + " missing"}, nil
	case err != nil:
		return adapters.InspectResult{}, fmt.Errorf("inspect: read vhost %s: %w", vhost, err)
	}
	return adapters.InspectResult{
		Exists:   true,
		Detail:   "vhost " + vhost + " exists",
		Receipt:  adapters.Receipt{"vhost": vhost, "user_prefix": instanceUserPrefix(req.InstanceID)},
		Metadata: adapters.Metadata{Attributes: map[string]any{"vhost": vhost}},
	}, nil
}

var _ adapters.Inspector = (*Adapter)(nil)
