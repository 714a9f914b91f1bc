package catalog

import (
	"context"
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// SecretResolver returns the value stored under key at a Vault path. Build
// calls it for every `vault:<path>#<key>` string in an adapter's config, so
// no admin password has to sit in catalog.yml. The caller owns the Vault
// client; this package never talks to Vault itself.
type SecretResolver func(ctx context.Context, path, key string) (string, error)

// vaultRefRE is the exact form of a vault reference. Paths and keys may
// hold anything but '#', which separates them.
var vaultRefRE = regexp.MustCompile(`^vault:([^#]+)#([^#]+)$`)

// pathError is a problem found while converting a YAML value, at a field
// path relative to the source's root.
type pathError struct {
	path, msg string
}

// nodeValue decodes a YAML node into plain Go values. A missing node (the
// field was left out) is nil.
func nodeValue(n *yaml.Node) (any, error) {
	if n.Kind == 0 {
		return nil, nil
	}
	var v any
	if err := n.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

// isAbsent reports whether a node-typed field was left out or set to null.
func isAbsent(n *yaml.Node) bool {
	return n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

// jsonValue turns a decoded YAML value into one encoding/json accepts:
// YAML allows non-string map keys and .inf/.nan, JSON does not. Every
// string goes through onString (nil keeps it), which is where vault
// references are resolved. Keys are visited in sorted order so problems
// are reported in a stable order.
func jsonValue(v any, path string, onString func(path, s string) string, errs *[]pathError) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for _, k := range slices.Sorted(maps.Keys(x)) {
			out[k] = jsonValue(x[k], joinPath(path, k), onString, errs)
		}
		return out
	case map[any]any:
		out := make(map[string]any, len(x))
		strKeys := make(map[string]any, len(x))
		for k, e := range x {
			strKeys[fmt.Sprint(k)] = e
		}
		for _, k := range slices.Sorted(maps.Keys(strKeys)) {
			out[k] = jsonValue(strKeys[k], joinPath(path, k), onString, errs)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = jsonValue(e, fmt.Sprintf("%s[%d]", path, i), onString, errs)
		}
		return out
	case string:
		if onString != nil {
			return onString(path, x)
		}
		return x
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) {
			*errs = append(*errs, pathError{path, fmt.Sprintf("%v cannot be represented in JSON", x)})
			return nil
		}
		return x
	default:
		return x
	}
}

// secretScope resolves the vault references of one Build. It caches each
// reference so a secret shared by many offerings costs one Vault read, and
// remembers every value so error text can be scrubbed of them.
type secretScope struct {
	ctx      context.Context
	resolve  SecretResolver
	resolved map[string]string
}

func newSecretScope(ctx context.Context, resolve SecretResolver) *secretScope {
	return &secretScope{ctx: ctx, resolve: resolve, resolved: map[string]string{}}
}

// onString returns the string callback for one config section: it swaps
// each vault reference for its secret and records problems in errs.
func (s *secretScope) onString(errs *[]pathError) func(path, v string) string {
	return func(path, v string) string {
		if !strings.HasPrefix(v, "vault:") {
			return v
		}
		m := vaultRefRE.FindStringSubmatch(v)
		if m == nil {
			// A near-miss would otherwise reach the adapter as a literal
			// password, which is never what the producer meant.
			*errs = append(*errs, pathError{path, fmt.Sprintf("%q looks like a vault reference but is not of the form vault:<path>#<key>", v)})
			return ""
		}
		if cached, ok := s.resolved[v]; ok {
			return cached
		}
		if s.resolve == nil {
			*errs = append(*errs, pathError{path, fmt.Sprintf("vault reference %q needs a secret resolver, and none is configured", v)})
			return ""
		}
		secret, err := s.resolve(s.ctx, m[1], m[2])
		if err != nil {
			*errs = append(*errs, pathError{path, fmt.Sprintf("resolve vault reference %q: %v", v, err)})
			return ""
		}
		s.resolved[v] = secret
		return secret
	}
}

// scrub replaces every resolved secret in msg, so an adapter factory that
// echoes a config value in its error cannot leak it into logs.
func (s *secretScope) scrub(msg string) string {
	for _, secret := range s.resolved {
		if secret != "" {
			msg = strings.ReplaceAll(msg, secret, "<redacted>")
		}
	}
	return msg
}
