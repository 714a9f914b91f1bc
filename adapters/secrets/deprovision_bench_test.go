package secrets_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/agora-osb/agora/adapters"
)

// BenchmarkDeprovision measures the deprovision of an instance with one
// binding while the AppRole mount holds N roles of other instances. A
// deprovision that is O(the instance) costs the same at every N. Run it
// with: go test -run '^$' -bench Deprovision -benchtime 20x ./adapters/secrets/
func BenchmarkDeprovision(b *testing.B) {
	srv := vault.srv
	if srv == nil {
		b.Skipf("no dev Vault: %v", vault.err)
	}
	ctx := context.Background()
	root, err := api.NewClient(&api.Config{Address: srv.Addr})
	if err != nil {
		b.Fatal(err)
	}
	root.SetToken(srv.RootToken)
	// A mount of its own, so the seeded roles go with it at the end.
	mount := fmt.Sprintf("approle-bench-%d", time.Now().UnixNano())
	if err := root.Sys().EnableAuthWithOptionsWithContext(ctx, mount, &api.EnableAuthOptions{Type: "approle"}); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = root.Sys().DisableAuthWithContext(context.Background(), mount) })
	a := newAdapter(b, map[string]any{"vault_addr": srv.Addr, "token": srv.RootToken, "approle_mount": mount})
	plan := defaultPlans()[0].Plan

	seeded := 0
	for _, roles := range []int{1000, 5000} {
		seedRoles(b, root, mount, seeded, roles)
		seeded = roles
		b.Run(fmt.Sprint("roles=", roles), func(b *testing.B) {
			for i := range b.N {
				b.StopTimer()
				inst := fmt.Sprintf("bench-%d-%d-%d", roles, i, time.Now().UnixNano())
				p, err := a.Provision(ctx, adapters.ProvisionRequest{InstanceID: inst, Plan: plan})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := a.Bind(ctx, adapters.BindRequest{InstanceID: inst, BindingID: inst + "-b", Plan: plan, InstanceReceipt: p.Receipt}); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if _, err := a.Deprovision(ctx, adapters.DeprovisionRequest{InstanceID: inst, Plan: plan, Receipt: p.Receipt}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// seedRoles writes roles [from, to) named like the adapter's, each bound to
// another instance's policy, eight writers at a time.
func seedRoles(b *testing.B, root *api.Client, mount string, from, to int) {
	b.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	next := make(chan int)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				_, err := root.Logical().Write(fmt.Sprintf("auth/%s/role/agora-seed-%d", mount, i), map[string]any{
					"token_policies": []string{fmt.Sprintf("agora-secrets-seed-%d", i)},
				})
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for i := from; i < to; i++ {
		select {
		case next <- i:
		case err := <-errs:
			close(next)
			wg.Wait()
			b.Fatal(err)
		}
	}
	close(next)
	wg.Wait()
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
}
