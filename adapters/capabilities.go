package adapters

// Capabilities are the optional interfaces an adapter implements, as far
// as the catalog's rules care: a plan may promise updates only of an
// Updater, and a pending result needs a Poller to follow it.
type Capabilities struct {
	Updater bool
	Poller  bool
	// Missing, when set, tells a catalog author how an offering gains a
	// capability it lacks ("update"): for an adapter whose capabilities
	// come from its config, by listing it there.
	Missing func(capability string) string
}

// CapabilitiesOf reports what a built adapter implements. An adapter
// whose capabilities come from its config says how to gain one with a
// MissingCapabilityHint method.
func CapabilitiesOf(a Adapter) Capabilities {
	_, up := a.(Updater)
	_, poll := a.(Poller)
	c := Capabilities{Updater: up, Poller: poll}
	if h, ok := a.(interface{ MissingCapabilityHint(string) string }); ok {
		c.Missing = h.MissingCapabilityHint
	}
	return c
}

// CheckConfig is a Factory's Check for an adapter whose New decodes its
// settings with DecodeConfig into S and P and returns a *T: it runs the
// same decode, so New and Check cannot disagree about a config, and reads
// the capabilities off *T's method set.
//
//	Check: adapters.CheckConfig[Settings, PlanSettings, Adapter](),
func CheckConfig[S, P, T any]() func(Config) (Capabilities, error) {
	return func(cfg Config) (Capabilities, error) {
		var adapter any = (*T)(nil)
		_, up := adapter.(Updater)
		_, poll := adapter.(Poller)
		_, _, err := DecodeConfig[S, P](cfg)
		return Capabilities{Updater: up, Poller: poll}, err
	}
}
