package mysql

import (
	"context"

	"github.com/agora-osb/agora/adapters"
)

// Inspect implements adapters.Inspector: the instance is its database,
// named from the instance ID.
func (a *Adapter) Inspect(ctx context.Context, req adapters.InspectRequest) (adapters.InspectResult, error) {
	n := namesFor(req.InstanceID)
	exists, err := a.databaseExists(ctx, n)
	if err != nil {
		return adapters.InspectResult{}, err
	}
	if !exists {
		return adapters.InspectResult{Detail: "database " + n.database + " missing"}, nil
	}
	return adapters.InspectResult{
		Exists:   true,
		Detail:   "database " + n.database + " exists",
		Receipt:  adapters.Receipt{"database": n.database},
		Metadata: adapters.Metadata{Attributes: map[string]any{"database": n.database}},
	}, nil
}

var _ adapters.Inspector = (*Adapter)(nil)
