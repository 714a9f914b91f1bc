// Package adaptertest runs the conformance kit (package conformance) from
// a Go test: RunT reports each check as its own subtest, so `go test -v`
// lists them and `go test -run 'TestConformance/distinct-credentials'`
// shows one. Its subpackage memadapter is the reference adapter, a
// fixture for tests and a shape for producers to copy.
//
// A producer's adapter gets a conformance_test.go like this one, pointed
// at a real backend; the Check functions play the bound application:
//
//	func TestConformance(t *testing.T) {
//		adaptertest.RunT(t, conformance.Options{
//			Factory:  myadapter.Factory(),
//			Settings: adapters.MapSettings(map[string]any{"url": backendURL}),
//			Plans:    []adapters.PlanConfig{{Plan: adapters.Plan{ID: "p1", Name: "small"}}},
//			CheckCredentials: func(ctx context.Context, creds map[string]any) error {
//				return connectAndWrite(ctx, creds)
//			},
//		})
//	}
//
// It imports package testing, so it must never be imported by production
// code: the agora binary runs the kit through package conformance, and
// cmd/agora's binary test fails when testing is linked in. The checks
// themselves live in conformance, never here.
package adaptertest
