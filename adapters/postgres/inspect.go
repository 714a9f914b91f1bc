package postgres

import (
	"context"
	"fmt"

	"github.com/agora-osb/agora/adapters"
)

// Inspect implements adapters.Inspector: the instance exists when both its
// database and its owner role do. Names come from the instance ID, so an
// instance whose provision Agora recorded as failed is found too.
func (a *Adapter) Inspect(ctx context.Context, req adapters.InspectRequest) (adapters.InspectResult, error) {
	n := namesFor(req.InstanceID)
	st, err := a.instanceState(ctx, n)
	if err != nil {
		return adapters.InspectResult{}, err
	}
	res := adapters.InspectResult{
		Exists: st.databaseExists && st.ownerExists,
		Detail: fmt.Sprintf("database %s %s, owner role %s %s", n.database, present(st.databaseExists), n.owner, present(st.ownerExists)),
	}
	if res.Exists {
		res.Receipt = adapters.Receipt{"database": n.database, "owner_role": n.owner}
		res.Metadata = adapters.Metadata{Attributes: map[string]any{"database": n.database}}
	}
	return res, nil
}

func present(ok bool) string {
	if ok {
		return "exists"
	}
	return "missing"
}

var _ adapters.Inspector = (*Adapter)(nil)
