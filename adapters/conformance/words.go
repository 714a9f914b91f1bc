package conformance

import "fmt"

// Audience is who reads a report: it decides whether a hint names Go
// identifiers or the protocol's fields and the CLI's flags.
type Audience int

const (
	// GoAudience is an adapter author running the kit from Go (RunT):
	// hints name Options fields and the adapters package.
	GoAudience Audience = iota
	// ProtocolAudience is a producer of a remote adapter, in any
	// language, running `agora adapter test` or the producer gate: hints
	// name the CLI's flags and the protocol's fields, and point to the
	// section of docs/adapter-protocol.md.
	ProtocolAudience
)

// words is one piece of report text in each audience's words. Every
// text that names something to fix is a words value, here, so the two
// vocabularies stay side by side.
type words struct{ goText, protocol string }

// say picks the text for the run's audience.
func (r *runner) say(w words) string {
	if r.opts.Audience == ProtocolAudience {
		return w.protocol
	}
	return w.goText
}

// sayf is say with fmt verbs in both texts.
func sayf(r *runner, w words, args ...any) string {
	return fmt.Sprintf(r.say(w), args...)
}

// docs points to a section of the protocol document by its anchor.
func docs(anchor string) string {
	return " (docs/adapter-protocol.md#" + anchor + ")"
}

var (
	wordsNoType = words{
		goText: "the credentials have no \"type\" key, so the kit cannot use them: return adapters.Typed(adapters.TypePostgreSQL, creds) " +
			"(or the type that fits), or set Options.CheckCredentials, CheckRevoked and CheckIsolation",
		protocol: "the credentials have no \"type\" key, so the kit cannot use them: return \"type\" (postgresql, mysql, redis, " +
			"rabbitmq or vault) with the keys that type needs" + docs("typed-credentials"),
	}
	wordsUnknownType = words{
		goText: "the kit has no verifier for this type: add one to Options.Verifiers, or set Options.CheckCredentials, " +
			"CheckRevoked and CheckIsolation",
		protocol: "the kit has no verifier for this type, so it cannot prove the credentials work, are revoked or are isolated; " +
			"use a known type (postgresql, mysql, redis, rabbitmq or vault) where one fits" + docs("typed-credentials"),
	}
	wordsTypedVerifier = words{
		goText: "The kit used the credentials as an application would, through the verifier for type %s " +
			"(adapters/conformance/credcheck); if the credentials are right, check the keys it reads",
		protocol: "The kit used the credentials as an application would, through its verifier for type %s; if they are right, " +
			"check the keys that type needs" + docs("typed-credentials"),
	}
	wordsDeprovisionBindings = words{
		goText: "Deprovision must remove everything Provision created, remaining bindings included, and revoke their credentials: " +
			"platforms deprovision without unbinding first (Cloud Controller's orphan mitigation does)",
		protocol: "DELETE /v1/instances/{id} must remove everything provision created, remaining bindings included, and revoke their " +
			"credentials: platforms deprovision without unbinding first (Cloud Controller's orphan mitigation does)" + docs("deprovision"),
	}
	wordsBindMissingInstance = words{
		goText: "Bind on an instance that does not exist must return an error wrapping adapters.ErrNotFound and create nothing: " +
			"look the instance up before issuing credentials",
		protocol: "PUT /v1/instances/{id}/bindings/{binding_id} on an instance that does not exist must answer 404 " +
			`{"error": "not_found"} and create nothing: look the instance up before issuing credentials` + docs("bind"),
	}
	wordsGoneIsSuccess = words{
		goText: "Treat a missing %s as success: return nil or an error wrapping adapters.ErrNotFound. " +
			"Platforms repeat DELETEs (Cloud Controller does, for orphan mitigation) and Agora repeats calls after a crash",
		protocol: "Treat a missing %s as success: answer 200, or 404 {\"error\": \"not_found\"}. " +
			"Platforms repeat DELETEs (Cloud Controller does, for orphan mitigation) and Agora repeats calls after a crash" + docs("errors"),
	}
	wordsHonourCtx = words{
		goText: "Honour ctx: pass it to every backend call and return (wrapping ctx.Err() with %w) as soon as it is done. " +
			"Work that cannot finish within the deadline should return Pending and be followed through adapters.Poller",
		protocol: "Answer every request within the call's timeout (--timeout, default 30s; Agora's config.timeout). Work that takes " +
			"longer answers at once with \"pending\": true and an \"operation\" token, and declares the status capability" + docs("pending-work-and-status-capability-status"),
	}
	wordsTimeoutName = words{goText: "CallTimeout", protocol: "--timeout"}
	wordsNoPoller    = words{
		goText:   "Implement adapters.Poller for work that outlasts one call, or finish the work before returning instead of setting Pending",
		protocol: "Declare the status capability and answer GET /v1/instances/{id}/operations/{operation}, or finish the work before answering instead of \"pending\": true" + docs("pending-work-and-status-capability-status"),
	}
	wordsNoCredentials = words{
		goText:   "Bind must return the credentials the application needs in BindResult.Credentials (in PollResult.Bind when it returned Pending)",
		protocol: "Answer a bind with the \"credentials\" object the application needs (in the poll's \"bind\" when it answered pending)" + docs("bind"),
	}
	wordsFactory = words{
		goText: "Factory.New must accept the settings in Options.Settings and must not need the backend to answer: " +
			"report an unreachable backend from Ping, not from New",
		protocol: "Check --url, --secret and the TLS flags: they are what the adapter's catalog entry says in config" + docs("quick-start"),
	}
	// wordsNoCapability takes the Go interface and the protocol capability.
	wordsNoCapability = words{
		goText:   "adapter does not implement %[1]s",
		protocol: "the adapter does not declare the %[2]s capability at GET /v1/capabilities" + docs("capabilities"),
	}
	wordsProvision = words{
		goText: "Provision must create the instance and return nil, or return Pending and then report Succeeded from Poll. " +
			"Check that ProvisionParameters are valid for the plan",
		protocol: "Answer PUT /v1/instances/{id} with 200 once the instance exists, or with \"pending\": true and then succeed from the " +
			"status poll. Check that --params are valid for the plan" + docs("provision"),
	}
	wordsIdempotentProvision = words{
		goText:   "A repeat of the same Provision must succeed: when the instance exists and matches the request, return success as if it had just been created",
		protocol: "A repeat of the same PUT /v1/instances/{id} must answer 200 as if it had just created the instance" + docs("provision"),
	}
	wordsAlreadyExistsOnRepeat = words{
		goText: "ErrAlreadyExists is for a conflicting resource this request did not create. A repeat of the same Provision " +
			"(after a crash, a timeout or a platform retry) must find its own instance and return success",
		protocol: "409 already_exists is for a conflicting resource this request did not create. A repeat of the same PUT " +
			"(after a crash, a timeout or a platform retry) must find its own instance and answer 200" + docs("provision"),
	}
	wordsBind = words{
		goText: "Bind must issue credentials for the binding and return them in BindResult.Credentials. " +
			"Check that BindParameters are valid for the plan",
		protocol: "Answer PUT /v1/instances/{id}/bindings/{binding_id} with the binding's own \"credentials\". " +
			"Check that --bind-params are valid for the plan" + docs("bind"),
	}
	wordsNoInvalidParameters = words{
		goText: "Options.InvalidProvisionParameters is not set, and no plan has a parameters schema to derive invalid values from: " +
			"set it to parameters the adapter must reject",
		protocol: "no invalid parameters to try: pass --invalid-params with a JSON object the adapter must reject, or --slice with a slice " +
			"whose plan has a parameters schema" + docs("provision"),
	}
	wordsInvalidParameters = words{
		goText: "Validate parameters before any backend work and return adapters.InvalidParameters(...) (an error wrapping " +
			"adapters.ErrInvalidParameters) from Provision itself, not later from Poll: Agora shows its message to the app developer",
		protocol: "Validate parameters before any backend work and answer 400 {\"error\": \"invalid_parameters\", \"message\": ...} " +
			"to the PUT itself, not later from the status poll: Agora shows the message to the app developer" + docs("errors"),
	}
	wordsUnbind = words{
		goText:   "Unbind must revoke the binding's credentials and return nil (or Pending, then Succeeded from Poll)",
		protocol: "Answer DELETE /v1/instances/{id}/bindings/{binding_id} with 200 once the binding's credentials are revoked" + docs("unbind"),
	}
	wordsUnbindFinds = words{
		goText:   "Unbind must find the binding Bind created: derive names from the binding ID, or keep them in the Receipt",
		protocol: "Unbind must find the binding bind created: derive names from the binding ID, or keep them in the bind's \"receipt\"" + docs("unbind"),
	}
	wordsDeprovisionFinds = words{
		goText:   "Deprovision must find the instance Provision created: derive names from the instance ID, or keep them in the Receipt",
		protocol: "Deprovision must find the instance provision created: derive names from the instance ID, or keep them in the \"receipt\"" + docs("deprovision"),
	}
	wordsDeprovision = words{
		goText: "Deprovision must remove everything Provision created, its bindings included, and return nil " +
			"(or Pending, then Succeeded from Poll)",
		protocol: "Answer DELETE /v1/instances/{id} with 200 once everything provision created is gone, its bindings included" + docs("deprovision"),
	}
	wordsEmptyMessage = words{
		goText:   "Every error needs a message that names the operation and the resource; wrap the adapters sentinel errors with %w where one applies",
		protocol: "Every error answer needs a \"message\" that names the operation and the resource" + docs("errors"),
	}
)
