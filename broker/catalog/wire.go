package catalog

import "encoding/json"

// The wire types are the GET /v2/catalog body as the OSB spec words it.
// brokerapi's domain types are close but print "parameters": null and
// empty schemas objects, which some platforms reject, so Agora serves its
// own. Optional fields are omitted when absent.

type wireCatalog struct {
	Services []wireService `json:"services"`
}

type wireService struct {
	Name                 string         `json:"name"`
	ID                   string         `json:"id"`
	Description          string         `json:"description"`
	Tags                 []string       `json:"tags,omitempty"`
	Requires             []string       `json:"requires,omitempty"`
	Bindable             bool           `json:"bindable"`
	InstancesRetrievable bool           `json:"instances_retrievable,omitempty"`
	BindingsRetrievable  bool           `json:"bindings_retrievable,omitempty"`
	AllowContextUpdates  bool           `json:"allow_context_updates,omitempty"`
	Metadata             map[string]any `json:"metadata,omitempty"`
	PlanUpdateable       bool           `json:"plan_updateable,omitempty"`
	Plans                []wirePlan     `json:"plans"`
}

type wirePlan struct {
	ID          string         `json:"id"`
	Name        string         `json:"name"`
	Description string         `json:"description"`
	Metadata    map[string]any `json:"metadata,omitempty"`
	// Free is always printed: its default (true) is easy to forget.
	Free bool `json:"free"`
	// Bindable and PlanUpdateable are always printed, resolved from the
	// offering when the plan does not say: the spec lets them default to
	// the offering's, but Korifi's catalog mapper reads the plan's only,
	// and would show every plan as neither bindable nor updateable.
	Bindable               bool                 `json:"bindable"`
	PlanUpdateable         bool                 `json:"plan_updateable"`
	Schemas                *wireSchemas         `json:"schemas,omitempty"`
	MaximumPollingDuration *int                 `json:"maximum_polling_duration,omitempty"`
	MaintenanceInfo        *wireMaintenanceInfo `json:"maintenance_info,omitempty"`
	// BindingRotatable is printed only when true, the spec's default
	// being false.
	BindingRotatable bool `json:"binding_rotatable,omitempty"`
}

type wireSchemas struct {
	ServiceInstance *wireInstanceSchemas `json:"service_instance,omitempty"`
	ServiceBinding  *wireBindingSchemas  `json:"service_binding,omitempty"`
}

type wireInstanceSchemas struct {
	Create *wireParameters `json:"create,omitempty"`
	Update *wireParameters `json:"update,omitempty"`
}

type wireBindingSchemas struct {
	Create *wireParameters `json:"create,omitempty"`
}

type wireParameters struct {
	Parameters json.RawMessage `json:"parameters"`
}

type wireMaintenanceInfo struct {
	Version     string `json:"version"`
	Description string `json:"description,omitempty"`
}

// wireSchemasOf returns the plan's schemas object, or nil when the plan has
// no schema at all.
func wireSchemasOf(create, update, bind *paramSchema) *wireSchemas {
	params := func(s *paramSchema) *wireParameters {
		if s == nil {
			return nil
		}
		return &wireParameters{Parameters: s.wire}
	}
	var out wireSchemas
	if create != nil || update != nil {
		out.ServiceInstance = &wireInstanceSchemas{Create: params(create), Update: params(update)}
	}
	if bind != nil {
		out.ServiceBinding = &wireBindingSchemas{Create: params(bind)}
	}
	if out.ServiceInstance == nil && out.ServiceBinding == nil {
		return nil
	}
	return &out
}
