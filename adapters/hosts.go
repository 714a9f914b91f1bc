package adapters

import (
	"errors"
	"fmt"
	"strings"
)

// CheckHost accepts a bare host name or IP address, for a settings field
// that an adapter joins with a port into the URIs it hands out, and rejects
// what would silently change their meaning there: a port (one ':'; an IPv6
// address has more), a scheme, user info, a path, a query, a fragment or
// white space. A blank host is "required".
func CheckHost(host string) error {
	switch {
	case strings.TrimSpace(host) == "":
		return errors.New("required")
	case strings.ContainsAny(host, " \t\r\n/@?#") || strings.Count(host, ":") == 1:
		return fmt.Errorf("%q must be a bare host name or IP address, without port or scheme", host)
	}
	return nil
}
