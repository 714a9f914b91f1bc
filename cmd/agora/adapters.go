package main

import (
	"fmt"
	"io"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/adapters/mysql"
	"github.com/agora-osb/agora/adapters/osb"
	"github.com/agora-osb/agora/adapters/postgres"
	"github.com/agora-osb/agora/adapters/rabbitmq"
	"github.com/agora-osb/agora/adapters/redis"
	"github.com/agora-osb/agora/adapters/remote"
	"github.com/agora-osb/agora/adapters/secrets"
	"github.com/agora-osb/agora/broker/catalog"
)

// adapterFactories is the explicit list of adapters compiled into this
// binary, like Terraform's Resources(). Adding a Go adapter means one line
// here; there are no init() registries.
func adapterFactories() []adapters.Factory {
	return []adapters.Factory{
		secrets.Factory(),
		postgres.Factory(),
		mysql.Factory(),
		redis.Factory(),
		rabbitmq.Factory(),
		osb.Factory(),
		remote.Factory(),
	}
}

func registry() (*adapters.Registry, error) {
	return adapters.NewRegistry(adapterFactories()...)
}

// buildOptions are the catalog build options of a running broker:
// vault: references resolve against Agora's Vault, and producer sections
// with an upstream broker import that broker's catalog.
func buildOptions(reg *adapters.Registry, resolve catalog.SecretResolver) catalog.BuildOptions {
	return catalog.BuildOptions{Registry: reg, Resolve: resolve, Import: osb.Importer(nil)}
}

func listAdapters(args []string, w io.Writer) error {
	fs := newFlagSet("adapters")
	output := outputFlag(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	type adapter struct {
		Name        string `json:"name"`
		Description string `json:"description"`
	}
	var list []adapter
	for _, f := range adapterFactories() {
		list = append(list, adapter{Name: f.Name, Description: f.Description})
	}
	return emit(w, *output, list, func(w io.Writer) {
		for _, a := range list {
			fmt.Fprintf(w, "%-10s %s\n", a.Name, a.Description)
		}
	})
}
