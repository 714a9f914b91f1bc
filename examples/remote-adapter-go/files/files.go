// Package files is the backend work of the example remote adapter: a
// directory per instance under Root, and a random token per binding in
// <dir>/.tokens/<binding_id>. It is a plain adapters.Adapter; main.go
// serves it over Agora's adapter protocol with remote.Handler.
package files

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"

	"github.com/agora-osb/agora/adapters"
)

// CredentialsType is the servicebinding.io type of the credentials this
// adapter hands out: a directory and a token, which only a process on the
// adapter's host can use, so no Agora verifier knows it. The platform
// engineer allows it explicitly (gate.allow_unverified_types) for its
// slices to go live automatically; docs/producers.md says why.
const CredentialsType = "agora-files"

// Adapter keeps everything under Root. Names come from the IDs alone,
// so every call can be repeated and finds what an earlier one made.
type Adapter struct{ Root string }

// validID keeps IDs to one safe path element: no "/", no "..", no dotfile.
var validID = regexp.MustCompile(`^[A-Za-z0-9_~-][A-Za-z0-9._~-]{0,254}$`)

func (a *Adapter) path(ids ...string) (string, error) {
	for _, id := range ids {
		if !validID.MatchString(id) {
			return "", adapters.Terminal(fmt.Errorf("id %q cannot name a file", id))
		}
	}
	if len(ids) == 2 {
		return filepath.Join(a.Root, ids[0], ".tokens", ids[1]), nil
	}
	return filepath.Join(a.Root, ids[0]), nil
}

// exists reports whether the instance directory is there.
func (a *Adapter) exists(ctx context.Context, id string) (string, error) {
	dir, err := a.path(id)
	if err == nil {
		err = ctx.Err()
	}
	if err == nil {
		if _, statErr := os.Stat(dir); errors.Is(statErr, fs.ErrNotExist) {
			err = fmt.Errorf("instance %s: %w", id, adapters.ErrNotFound)
		}
	}
	return dir, err
}

func (a *Adapter) Provision(ctx context.Context, req adapters.ProvisionRequest) (adapters.ProvisionResult, error) {
	if len(req.Parameters) > 0 {
		return adapters.ProvisionResult{}, adapters.InvalidParameters("this service takes no parameters")
	}
	dir, err := a.path(req.InstanceID)
	if err == nil {
		err = ctx.Err()
	}
	if err == nil {
		err = os.MkdirAll(filepath.Join(dir, ".tokens"), 0o700) // a repeat finds it there: success
	}
	return adapters.ProvisionResult{Metadata: adapters.Metadata{Labels: map[string]any{"path": dir}}}, err
}

// Inspect tells Agora's reconcile whether the instance directory is there.
func (a *Adapter) Inspect(ctx context.Context, req adapters.InspectRequest) (adapters.InspectResult, error) {
	dir, err := a.exists(ctx, req.InstanceID)
	if errors.Is(err, adapters.ErrNotFound) {
		return adapters.InspectResult{Detail: dir + " missing"}, nil
	}
	return adapters.InspectResult{Exists: err == nil, Detail: dir + " exists"}, err
}

// Update has nothing to change (no parameters), but proves the instance is there.
func (a *Adapter) Update(ctx context.Context, req adapters.UpdateRequest) (adapters.UpdateResult, error) {
	if len(req.Parameters) > 0 {
		return adapters.UpdateResult{}, adapters.InvalidParameters("this service takes no parameters")
	}
	_, err := a.exists(ctx, req.InstanceID)
	return adapters.UpdateResult{}, err
}

func (a *Adapter) Deprovision(ctx context.Context, req adapters.DeprovisionRequest) (adapters.DeprovisionResult, error) {
	dir, err := a.exists(ctx, req.InstanceID)
	if err == nil {
		err = os.RemoveAll(dir)
	}
	return adapters.DeprovisionResult{}, err
}

// Bind returns the binding's token, creating it on the first call. The
// token is written to a temporary file and linked into place, so a
// concurrent repeat either wins the link or reads a complete token.
func (a *Adapter) Bind(ctx context.Context, req adapters.BindRequest) (adapters.BindResult, error) {
	dir, err := a.exists(ctx, req.InstanceID)
	if err != nil {
		return adapters.BindResult{}, err
	}
	file, err := a.path(req.InstanceID, req.BindingID)
	if err != nil {
		return adapters.BindResult{}, err
	}
	tmp := file + "." + rand.Text() + ".tmp"
	if err := os.WriteFile(tmp, []byte(rand.Text()), 0o600); err != nil {
		return adapters.BindResult{}, fmt.Errorf("binding %s: %w", req.BindingID, err)
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, file); err != nil && !errors.Is(err, fs.ErrExist) {
		return adapters.BindResult{}, fmt.Errorf("binding %s: %w", req.BindingID, err)
	}
	token, err := os.ReadFile(file)
	if err != nil {
		return adapters.BindResult{}, fmt.Errorf("binding %s: %w", req.BindingID, err)
	}
	return adapters.BindResult{Credentials: map[string]any{
		adapters.CredentialsTypeKey: CredentialsType, adapters.CredentialsProviderKey: "files-go",
		"path": dir, "token": string(token),
	}}, nil
}

func (a *Adapter) Unbind(ctx context.Context, req adapters.UnbindRequest) (adapters.UnbindResult, error) {
	file, err := a.path(req.InstanceID, req.BindingID)
	if err == nil {
		err = ctx.Err()
	}
	if err == nil {
		if err = os.Remove(file); errors.Is(err, fs.ErrNotExist) {
			err = fmt.Errorf("binding %s: %w", req.BindingID, adapters.ErrNotFound)
		}
	}
	return adapters.UnbindResult{}, err
}
