package main

import (
	"fmt"
	"io"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/adapters/mysql"
	"github.com/agora-osb/agora/adapters/postgres"
	"github.com/agora-osb/agora/adapters/rabbitmq"
	"github.com/agora-osb/agora/adapters/redis"
	"github.com/agora-osb/agora/adapters/secrets"
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
	}
}

func registry() (*adapters.Registry, error) {
	return adapters.NewRegistry(adapterFactories()...)
}

func listAdapters(w io.Writer) error {
	for _, f := range adapterFactories() {
		fmt.Fprintf(w, "%-10s %s\n", f.Name, f.Description)
	}
	return nil
}
