package integration

// Helpers for adapters_test.go: the repository's catalog served by a real
// `agora serve`, an OSB client per offering, and read-only views of the
// real PostgreSQL, MariaDB, Redis and RabbitMQ servers, matched by the
// naming scheme each adapter's README documents.

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/redis/go-redis/v9"

	"github.com/agora-osb/agora/internal/devvault"
)

// The local servers, and how their admins log in on this machine.
const (
	pgAdminURI       = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	mysqlAdminDSN    = "root@tcp(127.0.0.1:3306)/?interpolateParams=true"
	rabbitManagement = "http://127.0.0.1:15672"
	rabbitAdminUser  = "guest"
	rabbitAdminPass  = "guest"
)

// backendSecrets are what catalog.yml's vault: references point at, with
// this machine's values (the same as cmd/agora/dev.go's devSecrets).
var backendSecrets = map[string]map[string]any{
	"agora-config/postgres": {"admin_password": ""},
	"agora-config/mysql":    {"admin_password": ""},
	"agora-config/redis":    {"admin_password": ""},
	"agora-config/rabbitmq": {"admin_password": "guest"},
}

// seedBackendSecrets stores the adapters' admin passwords in the Vault at
// addr, where catalog.yml's references look for them.
func seedBackendSecrets(ctx context.Context, addr string) {
	GinkgoHelper()
	kv := rootClient(addr).KVv2("secret")
	for path, data := range backendSecrets {
		_, err := kv.Put(ctx, path, data)
		Expect(err).NotTo(HaveOccurred(), "seed secret/%s in Vault at %s", path, addr)
	}
}

// repoCatalog returns the repository's catalog.yml unchanged except that
// the secrets offering works on the suite's Vault instead of agora dev's
// 127.0.0.1:8200. The vault: references of the backends stay as they are.
func repoCatalog() string {
	GinkgoHelper()
	root, err := devvault.FindRepoRoot(".")
	Expect(err).NotTo(HaveOccurred())
	data, err := os.ReadFile(filepath.Join(root, "catalog.yml"))
	Expect(err).NotTo(HaveOccurred())
	s := string(data)
	Expect(s).To(ContainSubstring("vault_addr: http://127.0.0.1:8200"), "catalog.yml's secrets offering moved: update repoCatalog")
	for _, name := range []string{"postgres", "mysql", "redis", "rabbitmq"} {
		Expect(s).To(ContainSubstring("vault:secret/agora-config/"+name+"#admin_password"), "catalog.yml no longer references the %s admin password in Vault", name)
	}
	return strings.Replace(s, "vault_addr: http://127.0.0.1:8200", "vault_addr: "+vault.Addr, 1)
}

// ---- OSB, per offering ----

// OfferingClient speaks OSB about one offering of the catalog, with the IDs the
// broker's /v2/catalog gives for it.
type OfferingClient struct {
	Name      string
	ServiceID string
	PlanIDs   map[string]string
	osb       *OSBClient
}

// offeringFromCatalog finds the offering name in GET /v2/catalog.
func offeringFromCatalog(osb *OSBClient, name string) *OfferingClient {
	GinkgoHelper()
	cat := osb.Catalog()
	Expect(cat.Status).To(Equal(http.StatusOK), cat.String())
	services, _ := cat.JSON["services"].([]any)
	for _, s := range services {
		svc := s.(map[string]any)
		if svc["name"] != name {
			continue
		}
		o := &OfferingClient{Name: name, ServiceID: svc["id"].(string), PlanIDs: map[string]string{}, osb: osb}
		for _, p := range svc["plans"].([]any) {
			plan := p.(map[string]any)
			o.PlanIDs[plan["name"].(string)] = plan["id"].(string)
		}
		return o
	}
	Fail(fmt.Sprintf("no offering %q in the catalog: %s", name, cat.Body))
	return nil
}

func (o *OfferingClient) planID(plan string) string {
	GinkgoHelper()
	id, ok := o.PlanIDs[plan]
	Expect(ok).To(BeTrue(), "offering %s has no plan %q (plans: %v)", o.Name, plan, o.PlanIDs)
	return id
}

// Provision sends create-service for plan with params (nil: none).
func (o *OfferingClient) Provision(iid, plan string, params map[string]any, acceptsIncomplete bool) Response {
	GinkgoHelper()
	body := map[string]any{
		"service_id": o.ServiceID, "plan_id": o.planID(plan),
		"organization_guid": "org-guid", "space_guid": "space-guid",
		"context": map[string]any{"platform": "cloudfoundry", "organization_guid": "org-guid", "space_guid": "space-guid"},
	}
	if params != nil {
		body["parameters"] = params
	}
	return o.osb.ProvisionWith(iid, body, acceptsIncomplete)
}

func (o *OfferingClient) Bind(iid, bid, plan string, acceptsIncomplete bool) Response {
	GinkgoHelper()
	return o.osb.Do(http.MethodPut, bindingPath(iid, bid)+query(acceptsIncomplete), map[string]any{
		"service_id": o.ServiceID, "plan_id": o.planID(plan), "app_guid": "app-guid",
		"bind_resource": map[string]any{"app_guid": "app-guid"},
	})
}

func (o *OfferingClient) Unbind(iid, bid, plan string, acceptsIncomplete bool) Response {
	GinkgoHelper()
	return o.osb.Do(http.MethodDelete, bindingPath(iid, bid)+query(acceptsIncomplete, "service_id", o.ServiceID, "plan_id", o.planID(plan)), nil)
}

func (o *OfferingClient) Deprovision(iid, plan string, acceptsIncomplete bool) Response {
	GinkgoHelper()
	return o.osb.Do(http.MethodDelete, instancePath(iid)+query(acceptsIncomplete, "service_id", o.ServiceID, "plan_id", o.planID(plan)), nil)
}

// DeprovisionLater deprovisions iid when the current spec ends, whatever
// state a failed spec left it in (already gone is fine), so no instance of
// this run stays on the real servers.
func (o *OfferingClient) DeprovisionLater(iid, plan string) {
	GinkgoHelper()
	DeferCleanup(func(_ SpecContext) {
		// An async bind or provision may still be settling: retry 409/422
		// like a platform does.
		Eventually(func(g Gomega) {
			r := o.Deprovision(iid, plan, true)
			switch r.Status {
			case http.StatusOK, http.StatusGone:
			case http.StatusAccepted:
				g.Expect(o.osb.AwaitOperation(iid, r.Str("operation"), 30*time.Second).Status).
					To(Equal(http.StatusGone), "cleanup: async deprovision of %s %s did not finish", o.Name, iid)
			default:
				g.Expect(r.Status).To(Equal(http.StatusOK), "cleanup: deprovision %s %s: %s", o.Name, iid, r)
			}
		}).WithTimeout(45 * time.Second).WithPolling(500 * time.Millisecond).Should(Succeed())
	}, NodeTimeout(60*time.Second))
}

// ---- PostgreSQL ----

// pgInstancePrefix starts every database and role of the instance: "agora_"
// and 16 hex digits of SHA-256 of the ID (adapters/postgres/README.md).
func pgInstancePrefix(iid string) string { return "agora_" + sha256Hex(iid, 16) }

func pgAdmin(ctx context.Context) *pgx.Conn {
	GinkgoHelper()
	c, err := pgx.Connect(ctx, pgAdminURI)
	Expect(err).NotTo(HaveOccurred(), "admin connection to PostgreSQL")
	DeferCleanup(func() { _ = c.Close(context.Background()) })
	return c
}

func pgStrings(ctx context.Context, sql string, args ...any) []string {
	GinkgoHelper()
	rows, err := pgAdmin(ctx).Query(ctx, sql, args...)
	Expect(err).NotTo(HaveOccurred())
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	Expect(err).NotTo(HaveOccurred())
	return out
}

// pgLeftovers lists databases and roles with the instance's prefix.
func pgLeftovers(ctx context.Context, iid string) []string {
	GinkgoHelper()
	return pgStrings(ctx, `SELECT 'database ' || datname FROM pg_database WHERE starts_with(datname, $1)
		UNION ALL SELECT 'role ' || rolname FROM pg_roles WHERE starts_with(rolname, $1)`, pgInstancePrefix(iid))
}

func pgRoleExists(ctx context.Context, role string) bool {
	GinkgoHelper()
	return len(pgStrings(ctx, `SELECT rolname::text FROM pg_roles WHERE rolname = $1`, role)) > 0
}

func pgConnect(ctx context.Context, uri string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(uri)
	if err != nil {
		return nil, fmt.Errorf("parse uri: %w", err)
	}
	cfg.ConnectTimeout = 10 * time.Second
	return pgx.ConnectConfig(ctx, cfg)
}

// pgWork connects with the binding's uri and creates a table, inserts and
// selects, as an application would.
func pgWork(ctx context.Context, creds map[string]any) error {
	uri, _ := creds["uri"].(string)
	c, err := pgConnect(ctx, uri)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer c.Close(context.WithoutCancel(ctx))
	if _, err := c.Exec(ctx, `CREATE TABLE IF NOT EXISTS notes (id serial PRIMARY KEY, body text NOT NULL)`); err != nil {
		return fmt.Errorf("create table: %w", err)
	}
	note := fmt.Sprint("from ", creds["username"])
	if _, err := c.Exec(ctx, `INSERT INTO notes (body) VALUES ($1)`, note); err != nil {
		return fmt.Errorf("insert: %w", err)
	}
	var n int
	if err := c.QueryRow(ctx, `SELECT count(*) FROM notes WHERE body = $1`, note).Scan(&n); err != nil {
		return fmt.Errorf("select: %w", err)
	}
	if n < 1 {
		return fmt.Errorf("select found %d rows after the insert", n)
	}
	return nil
}

// pgRejected returns nil when the binding's role is gone: this server
// trusts 127.0.0.1, so a login proves nothing about the password, but it
// does fail for a role that no longer exists.
func pgRejected(ctx context.Context, creds map[string]any) error {
	user, _ := creds["username"].(string)
	if pgRoleExists(ctx, user) {
		return fmt.Errorf("role %s still exists in pg_roles", user)
	}
	c, err := pgConnect(ctx, creds["uri"].(string))
	if err == nil {
		_ = c.Close(ctx)
		return fmt.Errorf("%s still connects", user)
	}
	if !strings.Contains(err.Error(), "does not exist") {
		return fmt.Errorf("connecting as %s failed, but not because the role is gone: %w", user, err)
	}
	return nil
}

// withPath returns uri with its path (the database or vhost) replaced.
func uriWithPath(uri, path string) string {
	u, err := url.Parse(uri)
	Expect(err).NotTo(HaveOccurred())
	u.Path, u.RawPath = "/"+path, "/"+url.PathEscape(path)
	return u.String()
}

// ---- MariaDB / MySQL ----

// mysqlInstancePrefix starts the database and every user of the instance:
// "agora_" + 16 hex digits of SHA-256 of the ID + "_" (adapters/mysql/README.md).
func mysqlInstancePrefix(iid string) string { return "agora_" + sha256Hex(iid, 16) + "_" }

func mysqlAdmin() *sql.DB {
	GinkgoHelper()
	db, err := sql.Open("mysql", mysqlAdminDSN)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(db.Close)
	return db
}

// mysqlLeftovers lists databases (information_schema.SCHEMATA) and users
// (mysql.user) with the instance's prefix.
func mysqlLeftovers(ctx context.Context, iid string) []string {
	GinkgoHelper()
	p := mysqlInstancePrefix(iid)
	rows, err := mysqlAdmin().QueryContext(ctx, `
		SELECT CONCAT('database ', SCHEMA_NAME) FROM information_schema.SCHEMATA WHERE LEFT(SCHEMA_NAME, ?) = ?
		UNION ALL SELECT CONCAT('user ', User, '@', Host) FROM mysql.user WHERE LEFT(User, ?) = ?`, len(p), p, len(p), p)
	Expect(err).NotTo(HaveOccurred())
	defer rows.Close()
	var left []string
	for rows.Next() {
		var s string
		Expect(rows.Scan(&s)).To(Succeed())
		left = append(left, s)
	}
	Expect(rows.Err()).NotTo(HaveOccurred())
	return left
}

// mysqlSession opens one connection with the binding's uri.
func mysqlSession(ctx context.Context, uri string) (*sql.Conn, func(), error) {
	u, err := url.Parse(uri)
	if err != nil || u.Scheme != "mysql" || u.User == nil {
		return nil, nil, fmt.Errorf("no usable mysql uri")
	}
	cfg := mysql.NewConfig()
	cfg.Net, cfg.Addr, cfg.User = "tcp", u.Host, u.User.Username()
	cfg.Passwd, _ = u.User.Password()
	cfg.DBName = strings.TrimPrefix(u.Path, "/")
	cfg.Timeout = 10 * time.Second
	cfg.Logger = log.New(io.Discard, "", 0)
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, nil, err
	}
	db := sql.OpenDB(connector)
	conn, err := db.Conn(ctx)
	if err != nil {
		_ = db.Close()
		return nil, nil, err
	}
	return conn, func() { _ = conn.Close(); _ = db.Close() }, nil
}

func mysqlWork(ctx context.Context, creds map[string]any) error {
	c, done, err := mysqlSession(ctx, creds["uri"].(string))
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer done()
	if _, err := c.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS notes (id INT AUTO_INCREMENT PRIMARY KEY, body TEXT NOT NULL)`); err != nil {
		return fmt.Errorf("create table: %w", err)
	}
	note := fmt.Sprint("from ", creds["username"])
	if _, err := c.ExecContext(ctx, `INSERT INTO notes (body) VALUES (?)`, note); err != nil {
		return fmt.Errorf("insert: %w", err)
	}
	var n int
	if err := c.QueryRowContext(ctx, `SELECT COUNT(*) FROM notes WHERE body = ?`, note).Scan(&n); err != nil {
		return fmt.Errorf("select: %w", err)
	}
	if n < 1 {
		return fmt.Errorf("select found %d rows after the insert", n)
	}
	return nil
}

// mysqlRejected returns nil when the login is refused with access denied.
func mysqlRejected(ctx context.Context, creds map[string]any) error {
	_, done, err := mysqlSession(ctx, creds["uri"].(string))
	if err == nil {
		done()
		return fmt.Errorf("%v still logs in", creds["username"])
	}
	var me *mysql.MySQLError
	// ER_ACCESS_DENIED_ERROR, or MariaDB's ER_ACCESS_DENIED_NO_PASSWORD_ERROR.
	if errors.As(err, &me) && (me.Number == 1045 || me.Number == 1698) {
		return nil
	}
	return fmt.Errorf("login failed, but not with access denied: %w", err)
}

// ---- Redis (the adapter's namespaces live on the suite's shared Redis) ----

// redisSafeID is the name part adapters/redis/README.md documents.
func redisSafeID(id string) string {
	switch {
	case regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`).MatchString(id):
		return strings.ReplaceAll(id, "-", "")
	case regexp.MustCompile(`^[a-z0-9]{1,24}$`).MatchString(id):
		return id
	default:
		return "x" + sha256Hex(id, 31)
	}
}

// redisKeyPrefix is the instance's namespace under catalog.yml's
// key_prefix_root "svc".
func redisKeyPrefix(iid string) string { return "svc:" + redisSafeID(iid) + ":" }

// redisUserPrefix starts every ACL user of the instance.
func redisUserPrefix(iid string) string { return "agora-" + redisSafeID(iid) + "-" }

// redisLeftovers lists keys under the instance's prefix (SCAN MATCH) and
// ACL users with its user prefix.
func redisLeftovers(ctx context.Context, iid string) []string {
	GinkgoHelper()
	var left []string
	for _, k := range scanKeys(ctx, redisKeyPrefix(iid)+"*") {
		left = append(left, "key "+k)
	}
	users, err := rdb.ACLUsers(ctx).Result()
	Expect(err).NotTo(HaveOccurred())
	for _, u := range users {
		if strings.HasPrefix(u, redisUserPrefix(iid)) {
			left = append(left, "ACL user "+u)
		}
	}
	return left
}

// redisClientFor logs in with the binding's username and password (AUTH
// in HELLO), and nothing else from the environment.
func redisClientFor(creds map[string]any) *redis.Client {
	return redis.NewClient(&redis.Options{
		Addr:     fmt.Sprintf("%v:%v", creds["host"], creds["port"]),
		Username: fmt.Sprint(creds["username"]), Password: fmt.Sprint(creds["password"]),
		DisableIdentity: true, MaxRetries: -1, DialTimeout: 5 * time.Second,
	})
}

// redisWork writes and reads inside key_prefix, and checks that a key
// outside it is refused with NOPERM.
func redisWork(ctx context.Context, creds map[string]any) error {
	c := redisClientFor(creds)
	defer c.Close()
	prefix, _ := creds["key_prefix"].(string)
	if prefix == "" {
		return errors.New("credentials have no key_prefix")
	}
	key, val := prefix+"greeting-"+fmt.Sprint(creds["username"]), randomHex(8)
	if err := c.Set(ctx, key, val, 0).Err(); err != nil {
		return fmt.Errorf("SET inside the prefix: %w", err)
	}
	if got, err := c.Get(ctx, key).Result(); err != nil || got != val {
		return fmt.Errorf("GET inside the prefix = %q, %v", got, err)
	}
	outside := "svc:outside-" + randomHex(6)
	if err := c.Set(ctx, outside, "x", 0).Err(); !isNoPerm(err) {
		if err == nil {
			rdb.Del(context.WithoutCancel(ctx), outside) // never leave it on the shared server
		}
		return fmt.Errorf("SET %s outside the prefix: want NOPERM, got %v", outside, err)
	}
	return nil
}

func isNoPerm(err error) bool {
	return err != nil && redis.IsPermissionError(err) && strings.HasPrefix(err.Error(), "NOPERM")
}

// redisRejected returns nil when AUTH with the credentials fails.
func redisRejected(ctx context.Context, creds map[string]any) error {
	c := redisClientFor(creds)
	defer c.Close()
	err := c.Ping(ctx).Err()
	if err == nil {
		return fmt.Errorf("%v still authenticates", creds["username"])
	}
	if !redis.IsAuthError(err) {
		return fmt.Errorf("want WRONGPASS, got %w", err)
	}
	return nil
}

// ---- RabbitMQ ----

// rabbitVhost is the instance's vhost: "agora-" + the safe ID (the same
// scheme as Redis's, adapters/rabbitmq/README.md).
func rabbitVhost(iid string) string { return "agora-" + redisSafeID(iid) }

// rabbitNames returns the "name" of every object the management API lists
// at /api/<what>.
func rabbitNames(ctx context.Context, what string) []string {
	GinkgoHelper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rabbitManagement+"/api/"+what+"?columns=name", nil)
	Expect(err).NotTo(HaveOccurred())
	req.SetBasicAuth(rabbitAdminUser, rabbitAdminPass)
	resp, err := http.DefaultClient.Do(req)
	Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	Expect(resp.StatusCode).To(Equal(http.StatusOK), "GET /api/%s: %s", what, body)
	var items []struct {
		Name string `json:"name"`
	}
	Expect(json.Unmarshal(body, &items)).To(Succeed())
	names := make([]string, 0, len(items))
	for _, it := range items {
		names = append(names, it.Name)
	}
	sort.Strings(names)
	return names
}

// rabbitLeftovers lists the instance's vhost (/api/vhosts) and users with
// its user prefix (/api/users).
func rabbitLeftovers(ctx context.Context, iid string) []string {
	GinkgoHelper()
	var left []string
	vhost := rabbitVhost(iid)
	for _, v := range rabbitNames(ctx, "vhosts") {
		if v == vhost {
			left = append(left, "vhost "+v)
		}
	}
	for _, u := range rabbitNames(ctx, "users") {
		if strings.HasPrefix(u, vhost+"-") {
			left = append(left, "user "+u)
		}
	}
	return left
}

func amqpDial(uri string) (*amqp.Connection, error) {
	return amqp.DialConfig(uri, amqp.Config{Dial: amqp.DefaultDial(5 * time.Second)})
}

// rabbitWork dials the uri, declares a queue, publishes and consumes.
func rabbitWork(ctx context.Context, creds map[string]any) error {
	conn, err := amqpDial(creds["uri"].(string))
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("channel: %w", err)
	}
	q, err := ch.QueueDeclare("work-"+fmt.Sprint(creds["username"]), false, true, false, false, nil)
	if err != nil {
		return fmt.Errorf("declare queue: %w", err)
	}
	body := "hello " + randomHex(8)
	if err := ch.PublishWithContext(ctx, "", q.Name, false, false, amqp.Publishing{Body: []byte(body)}); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	msgs, err := ch.ConsumeWithContext(ctx, q.Name, "", true, false, false, false, nil)
	if err != nil {
		return fmt.Errorf("consume: %w", err)
	}
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	for {
		select {
		case m, ok := <-msgs:
			if !ok {
				return errors.New("consumer closed before the message arrived")
			}
			if string(m.Body) == body {
				return nil
			}
		case <-timeout.C:
			return errors.New("the published message was not consumed within 10s")
		}
	}
}

// rabbitRejected returns nil when the login is refused (ACCESS_REFUSED),
// or the vhost is (NOT_ALLOWED).
func rabbitRejected(_ context.Context, creds map[string]any) error {
	conn, err := amqpDial(creds["uri"].(string))
	if err == nil {
		conn.Close()
		return fmt.Errorf("%v still logs in", creds["username"])
	}
	var ae *amqp.Error
	if errors.As(err, &ae) && (ae.Code == amqp.AccessRefused || ae.Code == amqp.NotAllowed) {
		return nil
	}
	return fmt.Errorf("want ACCESS_REFUSED, got %w", err)
}

func sha256Hex(s string, digits int) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:digits]
}
