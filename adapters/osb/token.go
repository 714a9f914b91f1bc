package osb

import (
	"encoding/json"
	"fmt"

	"github.com/agora-osb/agora/adapters"
)

// opToken is what an OperationToken carries: everything Poll needs to ask
// the upstream about a pending operation, so that any replica (or this
// one after a restart) can poll it. Agora stores it in Redis; it holds no
// secret, only the upstream's operation handle.
type opToken struct {
	// Kind picks the last_operation endpoint (instance or binding) and
	// how 410 Gone is read.
	Kind adapters.OperationKind `json:"kind"`
	// Operation is the upstream's `operation`, passed back verbatim.
	Operation string `json:"operation,omitempty"`
	// PlanID is the upstream plan the instance was on before an update:
	// the spec wants that plan_id on last_operation while an update runs,
	// and PollRequest.Plan is the new plan.
	PlanID string `json:"plan_id,omitempty"`
}

func (t opToken) encode() string {
	raw, err := json.Marshal(t)
	if err != nil {
		// A struct of strings always encodes.
		panic(fmt.Sprintf("osb: encode operation token: %v", err))
	}
	return string(raw)
}

// decodeToken reads a token; the request's kind fills in a token without
// one, so Poll still works if a token was written by hand during repair.
func decodeToken(raw string, kind adapters.OperationKind) (opToken, error) {
	var t opToken
	if raw != "" {
		if err := json.Unmarshal([]byte(raw), &t); err != nil {
			return opToken{}, adapters.Terminal(fmt.Errorf("operation token %q was not issued by the osb adapter: %w", raw, err))
		}
	}
	if t.Kind == "" {
		t.Kind = kind
	}
	return t, nil
}
