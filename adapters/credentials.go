package adapters

import (
	"maps"
	"net"
	"net/url"
	"strconv"
)

// The servicebinding.io well-known keys every built-in adapter's
// credentials carry: `type` says how to use them (the conformance kit
// picks its verifier by it, Kubernetes platforms project it into the
// binding secret) and `provider` who issued them.
const (
	CredentialsTypeKey     = "type"
	CredentialsProviderKey = "provider"
	// CredentialsProvider is the provider of every built-in adapter's
	// credentials.
	CredentialsProvider = "agora"
)

// The credential types of the built-in adapters. docs/adapter-protocol.md
// ("Typed credentials") lists the keys each one carries.
const (
	TypePostgreSQL = "postgresql"
	TypeMySQL      = "mysql"
	TypeRedis      = "redis"
	TypeRabbitMQ   = "rabbitmq"
	// TypeVault is a Vault AppRole login with a KV v2 path of its own:
	// vault_addr, auth_path, role_id, secret_id, kv_mount, path.
	TypeVault = "vault"
)

// Typed adds the well-known type and provider keys to creds and returns
// it, so every adapter spells them the same way.
func Typed(typ string, creds map[string]any) map[string]any {
	creds[CredentialsTypeKey] = typ
	creds[CredentialsProviderKey] = CredentialsProvider
	return creds
}

// DatabaseCredentials are one binding's credentials for a database on a
// TCP server, as the mysql and postgres adapters hand them out.
type DatabaseCredentials struct {
	// Type is the credentials' servicebinding.io type (TypePostgreSQL).
	Type string
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
// uri, jdbcUrl) plus type and provider, the one TCP endpoint applications connect to, and a
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
		Credentials: Typed(c.Type, map[string]any{
			"host":     c.Host,
			"port":     c.Port,
			"database": c.Database,
			"username": c.Username,
			"password": c.Password,
			"uri":      uri.String(),
			"jdbcUrl":  jdbc,
		}),
		Endpoints: []Endpoint{{Host: c.Host, Ports: []string{port}, Protocol: "tcp"}},
		Receipt:   Receipt{"username": c.Username},
	}
}
