package conformance

import (
	"fmt"
	"maps"
	"net/url"
	"reflect"
	"slices"
	"strings"
)

// minSecretLen keeps very short values (a port, "true") out of the leak
// check, where they would match ordinary error text by accident.
const minSecretLen = 4

// leaf is one string value in a credentials map, with its key path.
type leaf struct {
	path  string
	key   string // the last path element, lower case
	value string
}

// leaves flattens nested credentials (maps, lists) into their string values.
func leaves(creds map[string]any) []leaf {
	var out []leaf
	var walk func(path, key string, v any)
	walk = func(path, key string, v any) {
		switch v := v.(type) {
		case string:
			out = append(out, leaf{path: path, key: strings.ToLower(key), value: v})
		case map[string]any:
			for k, x := range v {
				walk(joinPath(path, k), k, x)
			}
		case []any:
			for i, x := range v {
				walk(fmt.Sprintf("%s[%d]", path, i), key, x)
			}
		}
	}
	for k, v := range creds {
		walk(k, k, v)
	}
	slices.SortFunc(out, func(a, b leaf) int { return strings.Compare(a.path, b.path) })
	return out
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func keyHasAny(key string, words ...string) bool {
	for _, w := range words {
		if strings.Contains(key, w) {
			return true
		}
	}
	return false
}

// secretValues returns the credential values that must never appear in
// error text, keyed by value, with the key path they came from. A host
// name or a database name in an error is useful; a password is a leak.
// So only values under secret-sounding keys count, plus any URL's
// password and the URL that carries it.
func secretValues(creds map[string]any) map[string]string {
	out := map[string]string{}
	// The first name found for a value wins, and direct keys come first:
	// "password" says more than "uri (its password)".
	add := func(value, path string) {
		if _, seen := out[value]; !seen && len(value) >= minSecretLen {
			out[value] = path
		}
	}
	all := leaves(creds)
	for _, l := range all {
		if keyHasAny(l.key, "pass", "pwd", "secret", "token", "key", "credential", "private", "cert") {
			add(l.value, l.path)
		}
	}
	for _, l := range all {
		if u, err := url.Parse(l.value); err == nil && u.User != nil {
			if p, ok := u.User.Password(); ok {
				add(p, l.path+" (its password)")
				add(l.value, l.path)
			}
		}
	}
	return out
}

// identity returns the values that tell who a binding is: its user name,
// password, token or key. Two bindings that share all of them share one
// login, whatever else differs.
func identity(creds map[string]any) map[string]string {
	out := map[string]string{}
	for _, l := range leaves(creds) {
		if keyHasAny(l.key, "user", "login", "pass", "pwd", "secret", "token", "key") {
			out[l.path] = l.value
		}
		if u, err := url.Parse(l.value); err == nil && u.User != nil {
			out[l.path+" (its user name)"] = u.User.Username()
			p, _ := u.User.Password()
			out[l.path+" (its password)"] = p
		}
	}
	return out
}

// sameLogin reports why two credential sets amount to one login, or ""
// when they are distinct.
func sameLogin(a, b map[string]any) string {
	if reflect.DeepEqual(a, b) {
		return "the two bindings got identical credentials"
	}
	ia, ib := identity(a), identity(b)
	if len(ia) == 0 || !reflect.DeepEqual(ia, ib) {
		return ""
	}
	return fmt.Sprintf("the two bindings share the same %s; only other fields differ", strings.Join(slices.Sorted(maps.Keys(ia)), ", "))
}

// safeMessage returns err's text. A typed nil pointer in an error
// interface, or a broken Error method, panics; that is reported instead
// of crashing the run.
func safeMessage(err error) (msg string, panicked bool) {
	defer func() {
		if p := recover(); p != nil {
			msg, panicked = fmt.Sprintf("Error() panicked: %v", p), true
		}
	}()
	return err.Error(), false
}
