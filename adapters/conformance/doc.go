// Package conformance is the conformance kit: the checks every adapter
// must pass before Agora serves it, in a form a producer runs on her own
// machine against her own backend, long before she registers it, and that
// Agora runs itself: `agora adapter test` and the producer gate
// (producers) call Run through adapters/remote, and a canary will.
// Go tests call it through adapters/adaptertest.RunT, which reports each
// check as a subtest.
//
// One call to Run builds the adapter through its
// Factory, exactly as Agora does, and drives it through the whole
// contract of package adapters: strict settings, provision, bind,
// distinct and revocable credentials, tenant isolation, rejection of
// invalid parameters, idempotent repeats of every call, repeats that race
// with the first call, missing instances and bindings treated as gone,
// bind on a missing instance refused, credentials revoked by a deprovision
// that was not preceded by an unbind (a platform's orphan mitigation),
// cancelled and expired contexts honoured, Pending results followed
// through Poller, and error text that never carries a secret. Each check
// is reported on its own, with a hint on how to fix it. Everything the
// run creates uses IDs starting with "conf-" and is removed at the end,
// even when checks fail or the run is cancelled.
//
// The kit only talks to the adapters.Adapter interface, so it judges an
// in-process Go adapter and a client for a remote (HTTP) adapter alike.
//
// # Running it for your adapter
//
// Add a conformance_test.go next to the adapter and run
// `go test ./adapters/<name>/...`. Point it at a real backend. The kit
// plays the bound application itself when the credentials carry a
// servicebinding.io "type" it knows (postgresql, mysql, redis, rabbitmq,
// vault: Options.Verifiers, which RunT fills with credcheck.Defaults); for
// any other type the Check functions do it, as in this example (a program
// that is not a Go test, such as a CLI, calls Run and prints the Report
// instead):
//
//	package myadapter_test
//
//	func TestConformance(t *testing.T) {
//		backend := memadapter.NewBackend() // yours: a real server's address
//		adaptertest.RunT(t, conformance.Options{
//			Factory:  memadapter.Factory(backend),
//			Settings: adapters.MapSettings(map[string]any{"prefix": "ct-"}),
//			Plans:    []adapters.PlanConfig{{Plan: adapters.Plan{ID: "p1", Name: "small"}}},
//			InvalidProvisionParameters: map[string]any{"max_keys": -1},
//			CheckCredentials: func(ctx context.Context, creds map[string]any) error {
//				return backend.Put(creds, "probe", "ok") // connect and do real work
//			},
//			CheckRevoked: func(ctx context.Context, creds map[string]any) error {
//				if backend.Put(creds, "probe", "no") == nil { return errors.New("still works") }
//				return nil
//			},
//		})
//	}
//
// Under RunT each check is a subtest: `go test -run
// 'TestConformance/idempotent-bind'` shows that one (all checks still run:
// they build on each other). Missing optional capabilities (Updater,
// Pinger) are reported as skipped, never as passed; credentials the kit
// cannot use (no verifier for their type, no Check function) are skipped
// and named in Report.Unverified ("unverified: type X" in the summary).
//
// Hints speak to Options.Audience: Go names for RunT (the default), the
// CLI's flags and the protocol's fields for remote adapters (words.go
// holds both vocabularies).
//
// # What adapter authors must know
//
//   - Calls get a deadline of Options.CallTimeout (default 2m). A call
//     that returns after it fails the timeouts check; one that ignores
//     ctx is abandoned after twice that. The ctx passed to Factory.New
//     ends when New returns: do not keep it for background work.
//   - A repeated Bind may rotate the password; the kit then treats the
//     newest credentials as the binding's, and still expects every set it
//     was ever given to stop working after Unbind.
//   - The leak check treats as secret the string values under keys that
//     mention pass, pwd, secret, token, key, credential, private or cert,
//     and any URL's password (with the URL). Host names and user names may
//     appear in errors; those may not, nor in a Poll description.
//   - Parameters reach the adapter as Agora decodes them from JSON: numbers
//     are float64.
//
// The kit must never depend on how an adapter is reached, never keep
// state at package level (runs may go on in parallel), and never import
// package testing: it is linked into the agora binary, and
// cmd/agora's binary test proves testing is not.
package conformance
