package producers

import (
	"context"
	"time"
)

// Record is the stored form of a producer: the public fields and the
// sha256 of her token, which never leaves the store and this package.
type Record struct {
	Producer
	TokenSHA256 string `json:"token_sha256"`
}

// LiveSlice is one producer's live slice text.
type LiveSlice struct {
	Producer string
	Version  int
	Slice    string
}

// UpdateFunc changes a producer's record and returns the versions it
// changed. A store may call it more than once (optimistic retries), so it
// must not have side effects beyond its arguments.
type UpdateFunc func(rec *Record, versions map[int]*SliceVersion) ([]*SliceVersion, error)

// Store keeps producers, their slice versions and the catalog generation
// (redisstore.ProducerStore in production). Errors the caller can act on
// are *Error with ErrNotFound or ErrConflict; anything else means the
// store itself failed.
type Store interface {
	// Create stores a new producer, claiming her name and namespace
	// atomically: an existing name, or a namespace that overlaps another
	// producer's (one a prefix of the other), is ErrConflict, however
	// many creates race.
	Create(ctx context.Context, rec Record) error
	// Get reads one producer (ErrNotFound when absent).
	Get(ctx context.Context, name string) (Record, error)
	// List reads every producer, sorted by name.
	List(ctx context.Context) ([]Record, error)
	// Update changes a producer's record and any of her versions
	// atomically.
	Update(ctx context.Context, name string, fn UpdateFunc) error
	// Versions returns every version of a producer, newest first.
	Versions(ctx context.Context, name string) ([]*SliceVersion, error)
	// Version reads one version (ErrNotFound when absent).
	Version(ctx context.Context, name string, v int) (*SliceVersion, error)
	// NextVersion hands out the producer's next version number.
	NextVersion(ctx context.Context, name string) (int, error)
	// PutVersion stores a new version.
	PutVersion(ctx context.Context, name string, v *SliceVersion) error
	// Generation is the catalog generation: it moves whenever a live
	// slice changes; BumpGeneration moves it.
	Generation(ctx context.Context) (int64, error)
	BumpGeneration(ctx context.Context) (int64, error)
	// LiveSlices reads every producer's live slice, sorted by producer.
	LiveSlices(ctx context.Context) ([]LiveSlice, error)
	// LockCatalog takes the lock that serialises going live across
	// producers and replicas, waiting up to wait (ErrConflict after).
	// The returned func releases it, only if it is still ours.
	LockCatalog(ctx context.Context, ttl, wait time.Duration) (unlock func(), err error)
}

// SecretStore keeps the remote adapter's protocol secret out of Redis
// (vaultstore.ProducerSecrets in production).
type SecretStore interface {
	// PutProducerSecret stores value under key in the producer's secret
	// and returns the vault: reference the catalog build resolves.
	PutProducerSecret(ctx context.Context, producer, key, value string) (ref string, err error)
	// OwnsRef reports whether ref points into that producer's secret, the
	// only Vault path her slice may reference.
	OwnsRef(producer, ref string) bool
}
