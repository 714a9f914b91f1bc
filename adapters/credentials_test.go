package adapters

import (
	"net/url"
	"reflect"
	"testing"
)

// The expected results are what the mysql and postgres adapters returned
// before they shared this code: bound applications parse these strings.
func TestDatabaseCredentials(t *testing.T) {
	tests := []struct {
		name  string
		creds DatabaseCredentials
		want  BindResult
	}{
		{
			name: "mysql",
			creds: DatabaseCredentials{Type: TypeMySQL, Scheme: "mysql", JDBCScheme: "mysql", Host: "db.example.com", Port: 3306,
				Database: "agora_6ca13d52ca70c883_abc123", Username: "agora_6ca13d52ca70c883_4b31b3d57", Password: "Pw0rd"},
			want: BindResult{
				Credentials: map[string]any{
					"type": "mysql", "provider": "agora",
					"host": "db.example.com", "port": 3306, "database": "agora_6ca13d52ca70c883_abc123",
					"username": "agora_6ca13d52ca70c883_4b31b3d57", "password": "Pw0rd",
					"uri":     "mysql://agora_6ca13d52ca70c883_4b31b3d57:Pw0rd@db.example.com:3306/agora_6ca13d52ca70c883_abc123",
					"jdbcUrl": "jdbc:mysql://db.example.com:3306/agora_6ca13d52ca70c883_abc123?password=Pw0rd&user=agora_6ca13d52ca70c883_4b31b3d57",
				},
				Endpoints: []Endpoint{{Host: "db.example.com", Ports: []string{"3306"}, Protocol: "tcp"}},
				Receipt:   Receipt{"username": "agora_6ca13d52ca70c883_4b31b3d57"},
			},
		},
		{
			name: "postgres with sslmode",
			creds: DatabaseCredentials{Type: TypePostgreSQL, Scheme: "postgres", JDBCScheme: "postgresql", Host: "10.0.0.5", Port: 5432,
				Database: "agora_6ca13d52ca70c883_abc123", Username: "agora_6ca13d52ca70c883_b_4b31b3d5715e_abc123_binding", Password: "Pw0rd",
				Query: url.Values{"sslmode": {"verify-full"}}},
			want: BindResult{
				Credentials: map[string]any{
					"type": "postgresql", "provider": "agora",
					"host": "10.0.0.5", "port": 5432, "database": "agora_6ca13d52ca70c883_abc123",
					"username": "agora_6ca13d52ca70c883_b_4b31b3d5715e_abc123_binding", "password": "Pw0rd",
					"uri":     "postgres://agora_6ca13d52ca70c883_b_4b31b3d5715e_abc123_binding:Pw0rd@10.0.0.5:5432/agora_6ca13d52ca70c883_abc123?sslmode=verify-full",
					"jdbcUrl": "jdbc:postgresql://10.0.0.5:5432/agora_6ca13d52ca70c883_abc123?password=Pw0rd&sslmode=verify-full&user=agora_6ca13d52ca70c883_b_4b31b3d5715e_abc123_binding",
				},
				Endpoints: []Endpoint{{Host: "10.0.0.5", Ports: []string{"5432"}, Protocol: "tcp"}},
				Receipt:   Receipt{"username": "agora_6ca13d52ca70c883_b_4b31b3d5715e_abc123_binding"},
			},
		},
		{
			name: "IPv6 host and a database name that needs escaping",
			creds: DatabaseCredentials{Type: TypePostgreSQL, Scheme: "postgres", JDBCScheme: "postgresql", Host: "::1", Port: 5432,
				Database: "a b/c", Username: "u", Password: "p"},
			want: BindResult{
				Credentials: map[string]any{
					"type": "postgresql", "provider": "agora",
					"host": "::1", "port": 5432, "database": "a b/c", "username": "u", "password": "p",
					"uri":     "postgres://u:p@[::1]:5432/a%20b/c",
					"jdbcUrl": "jdbc:postgresql://[::1]:5432/a%20b%2Fc?password=p&user=u",
				},
				Endpoints: []Endpoint{{Host: "::1", Ports: []string{"5432"}, Protocol: "tcp"}},
				Receipt:   Receipt{"username": "u"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.creds.BindResult(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %#v\nwant %#v", got, tt.want)
			}
		})
	}
}
