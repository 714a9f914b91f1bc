package adapters

import (
	"maps"
	"net"
	"net/url"
	"strconv"
)

// DatabaseCredentials are one binding's credentials for a database on a
// TCP server, as the mysql and postgres adapters hand them out.
type DatabaseCredentials struct {
	// Scheme is the uri's scheme ("postgres"); JDBCScheme the jdbcUrl's
	// subprotocol ("postgresql").
	Scheme, JDBCScheme string
	Host               string
	Port               int
	Database           string
	Username           string
	Password           string
	// Query is added to both URLs, for example sslmode.
	Query url.Values
}

// BindResult returns the credentials under the keys Cloud Foundry
// buildpacks and Spring read (host, port, database, username, password,
// uri, jdbcUrl), the one TCP endpoint applications connect to, and a
// receipt naming the user, never the password.
func (c DatabaseCredentials) BindResult() BindResult {
	port := strconv.Itoa(c.Port)
	hostPort := net.JoinHostPort(c.Host, port)
	uri := url.URL{
		Scheme:   c.Scheme,
		User:     url.UserPassword(c.Username, c.Password),
		Host:     hostPort,
		Path:     "/" + c.Database,
		RawQuery: c.Query.Encode(),
	}
	jdbcQuery := url.Values{"user": {c.Username}, "password": {c.Password}}
	maps.Copy(jdbcQuery, c.Query)
	jdbc := "jdbc:" + c.JDBCScheme + "://" + hostPort + "/" + url.PathEscape(c.Database) + "?" + jdbcQuery.Encode()
	return BindResult{
		Credentials: map[string]any{
			"host":     c.Host,
			"port":     c.Port,
			"database": c.Database,
			"username": c.Username,
			"password": c.Password,
			"uri":      uri.String(),
			"jdbcUrl":  jdbc,
		},
		Endpoints: []Endpoint{{Host: c.Host, Ports: []string{port}, Protocol: "tcp"}},
		Receipt:   Receipt{"username": c.Username},
	}
}
