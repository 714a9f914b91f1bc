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
)
