package memadapter

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
)

// ErrAuthentication is what the Backend answers to credentials it does not
// accept: unknown user, wrong password, or a database the user has no
// grant on.
var ErrAuthentication = errors.New("authentication failed")

// Backend stands in for the server a real adapter manages (a database
// cluster, a message broker). It lives outside the Adapter so that a test
// can play the bound application, proving credentials work, are revoked and
// are isolated, the way a producer's test connects to a real backend.
// The zero value is not usable; call NewBackend.
type Backend struct {
	mu        sync.Mutex
	databases map[string]*database
}

type database struct {
	maxKeys int
	// users maps a user name to its password; one user per binding.
	users map[string]string
	data  map[string]string
}

// NewBackend returns an empty backend.
func NewBackend() *Backend {
	return &Backend{databases: make(map[string]*database)}
}

// Databases returns the names of the databases that exist, sorted, so a
// test can prove that nothing was left behind.
func (b *Backend) Databases() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Sorted(maps.Keys(b.databases))
}

// Put stores value under key, as an application bound with creds would.
func (b *Backend) Put(creds map[string]any, key, value string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	db, err := b.login(creds)
	if err != nil {
		return err
	}
	if _, exists := db.data[key]; !exists && len(db.data) >= db.maxKeys {
		return fmt.Errorf("database is full (max_keys %d)", db.maxKeys)
	}
	db.data[key] = value
	return nil
}

// Get reads the value under key, as an application bound with creds would.
func (b *Backend) Get(creds map[string]any, key string) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	db, err := b.login(creds)
	if err != nil {
		return "", err
	}
	v, ok := db.data[key]
	if !ok {
		return "", fmt.Errorf("key %q: not found", key)
	}
	return v, nil
}

// login must be called with b.mu held. Its errors never repeat the
// password: they may end up in an application's log.
func (b *Backend) login(creds map[string]any) (*database, error) {
	name, _ := creds["database"].(string)
	user, _ := creds["username"].(string)
	password, _ := creds["password"].(string)
	db, ok := b.databases[name]
	if !ok || user == "" {
		return nil, fmt.Errorf("database %q as user %q: %w", name, user, ErrAuthentication)
	}
	if want, ok := db.users[user]; !ok || want != password {
		return nil, fmt.Errorf("database %q as user %q: %w", name, user, ErrAuthentication)
	}
	return db, nil
}
