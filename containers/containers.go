// Package containers hands the harness and the tests a database per
// dialect:
//
//   - PostgreSQL and MySQL in testcontainers-go (modules/postgres and
//     modules/mysql), waiting until the server answers SQL over TCP;
//   - or an existing server the user names with TWISTBENCH_POSTGRES_DSN /
//     TWISTBENCH_MYSQL_DSN;
//   - SQLite in a temporary file, which needs nothing.
//
// # Images
//
// The official images are the default (DefaultPostgresImage,
// DefaultMySQLImage); Provider.PostgresImage / MySQLImage (the harness's
// --postgres-image / --mysql-image) and TWISTBENCH_POSTGRES_IMAGE /
// TWISTBENCH_MYSQL_IMAGE choose others. An image is used if the engine has
// it; otherwise it is pulled, within PullTimeout so that an unreachable
// registry fails fast. When the default image can be neither found nor
// pulled, the image built offline from Debian packages by
// `harness images build` (OfflinePostgresImage, OfflineMySQLImage: MariaDB,
// which Debian ships as its MySQL) is used if present; otherwise the
// dialect is unavailable, with the command that builds it in the reason.
// An image the user chose explicitly is never substituted.
//
// Unavailable dialects are reported as *Unavailable errors, which the CLI
// prints and skips and TestDB turns into t.Skip, except under
// TWISTBENCH_REQUIRE_DOCKER=1, where they are failures (CI sets it).
//
// # Readiness
//
// Both modules get a wait.ForSQL strategy (SELECT 1 through the project's
// own drivers) that replaces the mysql module's default wait for the log line
// "port: 3306  MySQL Community Server": MariaDB cannot honestly print that
// line, and a SQL answer is the readiness that matters for both images. The
// postgres module has no default wait strategy at all.
//
// # Cleanup
//
// Get hands out a fresh database per call on one server per dialect. Every
// container is labelled (LabelManaged, LabelOwner with the process id) and
// terminated when the last cleanup Get returned has run, or, for a
// Provider with Keep (the tests' one), by Close (RunMain at the end of a
// test binary). Ryuk, testcontainers' reaper, is an image that cannot be
// pulled on an air-gapped host: unless TESTCONTAINERS_RYUK_DISABLED is set,
// the package disables it when the engine does not have its image. A
// container left behind by a killed process is removed by Prune (`harness
// images prune`), and automatically when a new provider starts.
package containers

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	tcmysql "github.com/testcontainers/testcontainers-go/modules/mysql"
	tcpostgres "github.com/testcontainers/testcontainers-go/modules/postgres"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/twistbench/twistbench/impls/store"
	"github.com/twistbench/twistbench/impls/store/sqlconn"
)

// Images.
const (
	DefaultPostgresImage = "postgres:17-alpine"
	DefaultMySQLImage    = "mysql:8.4"
	// OfflinePostgresImage and OfflineMySQLImage are the stable tags that
	// images/build.sh gives the images it builds from Debian packages.
	OfflinePostgresImage = "twistbench/postgres:debian"
	OfflineMySQLImage    = "twistbench/mariadb:debian"
	// RyukImage is testcontainers' reaper.
	RyukImage = "testcontainers/ryuk:0.14.0"
)

// Environment variables read by NewProvider.
const (
	EnvPostgresImage = "TWISTBENCH_POSTGRES_IMAGE"
	EnvMySQLImage    = "TWISTBENCH_MYSQL_IMAGE"
	EnvPostgresDSN   = "TWISTBENCH_POSTGRES_DSN"
	EnvMySQLDSN      = "TWISTBENCH_MYSQL_DSN"
	EnvRequireDocker = "TWISTBENCH_REQUIRE_DOCKER"
	EnvRyukDisabled  = "TESTCONTAINERS_RYUK_DISABLED"
)

// Labels on every container this package starts.
const (
	LabelManaged = "org.twistbench.managed"
	LabelOwner   = "org.twistbench.owner-pid"
	LabelDialect = "org.twistbench.dialect"
)

// BuildCommand is what a user runs to build the offline images.
const BuildCommand = "harness images build"

// DatabaseName is the database created in every container.
const DatabaseName = "twistbench"

// Unavailable says why a dialect cannot be had here. The harness prints it
// and carries on with the other dialects; TestDB skips with it. Required is
// set under TWISTBENCH_REQUIRE_DOCKER=1: the caller must fail instead.
type Unavailable struct {
	Dialect  store.Dialect
	Reason   string
	Required bool
}

func (u *Unavailable) Error() string {
	s := fmt.Sprintf("%s unavailable: %s", u.Dialect, u.Reason)
	if u.Required {
		s += " (" + EnvRequireDocker + "=1 makes this a failure)"
	}
	return s
}

// Skippable reports whether err only means that a dialect is unavailable
// and may be skipped (an *Unavailable without Required).
func Skippable(err error) (*Unavailable, bool) {
	var u *Unavailable
	if errors.As(err, &u) && !u.Required {
		return u, true
	}
	return nil, false
}

// Choice is how a dialect's database is provided: an existing server, an
// image (and why that one), or a file.
type Choice struct {
	Dialect store.Dialect
	// Source is "dsn", "image" or "sqlite".
	Source string
	// Image is the image that will run, for Source "image".
	Image string
	// Why explains the choice in one line.
	Why string
	// Err is set when the dialect is unavailable (an *Unavailable).
	Err error
}

// Provider provides a database per dialect. Set its fields before the first
// call; it is safe for concurrent use afterwards. The zero value is not
// ready: use NewProvider.
type Provider struct {
	// PostgresImage and MySQLImage, when set, are the user's explicit
	// choice (flags); they win over the environment.
	PostgresImage, MySQLImage string
	// PostgresDSN and MySQLDSN name existing servers; no container starts.
	PostgresDSN, MySQLDSN string
	// RequireDocker makes an unavailable server dialect a failure.
	RequireDocker bool
	// PullTimeout bounds one image pull (default 20s).
	PullTimeout time.Duration
	// StartTimeout bounds the start of a container until it answers SQL
	// (default 2 minutes).
	StartTimeout time.Duration
	// Logf, if set, hears progress (which image, how long a start took).
	Logf func(format string, args ...any)
	// Keep keeps a server running when its last Get is cleaned up, for
	// the next Get; Close terminates it. Test binaries set it (TestDB).
	Keep bool

	mu      sync.Mutex
	docker  *engine // lazily connected; nil until first use
	dockErr error   // why the engine does not answer
	choices map[store.Dialect]*Choice
	servers map[store.Dialect]*server
}

// NewProvider returns a provider configured from the environment.
func NewProvider() *Provider {
	return &Provider{
		PostgresImage: os.Getenv(EnvPostgresImage),
		MySQLImage:    os.Getenv(EnvMySQLImage),
		PostgresDSN:   os.Getenv(EnvPostgresDSN),
		MySQLDSN:      os.Getenv(EnvMySQLDSN),
		RequireDocker: RequireDockerFromEnv(),
	}
}

// RequireDockerFromEnv reports whether TWISTBENCH_REQUIRE_DOCKER is set to
// a true value (1, true, yes).
func RequireDockerFromEnv() bool {
	v := strings.ToLower(strings.TrimSpace(os.Getenv(EnvRequireDocker)))
	return v == "1" || v == "true" || v == "yes"
}

func (p *Provider) logf(format string, args ...any) {
	if p.Logf != nil {
		p.Logf(format, args...)
	}
}

func (p *Provider) unavailable(d store.Dialect, format string, args ...any) *Unavailable {
	return &Unavailable{Dialect: d, Reason: fmt.Sprintf(format, args...), Required: p.RequireDocker}
}

// Get returns the DSN of a fresh, empty database of dialect d and a cleanup
// that drops it. cleanup is never nil, even with an error, so callers can
// defer it before checking err. An *Unavailable error means the dialect
// cannot be had here (see Skippable).
//
// PostgreSQL and MySQL databases live on one server per dialect, started on
// first use (or the existing server of TWISTBENCH_*_DSN) and shared by
// every Get: creating a database costs milliseconds where starting a
// container costs seconds. The server is terminated when the last cleanup
// runs, unless Keep is set, in which case Close terminates it. On an
// existing server whose account may not create databases, the DSN's own
// database is handed out as is. SQLite is a file in a new temporary
// directory.
func (p *Provider) Get(ctx context.Context, d store.Dialect) (dsn string, cleanup func(), err error) {
	cleanup = func() {}
	switch d {
	case store.SQLite:
		dir, err := os.MkdirTemp("", "twistbench-sqlite-")
		if err != nil {
			return "", cleanup, fmt.Errorf("containers: sqlite: %w", err)
		}
		return "sqlite://" + dir + "/inventory.db", func() { os.RemoveAll(dir) }, nil
	case store.Postgres, store.MySQL:
	default:
		return "", cleanup, fmt.Errorf("containers: unknown dialect %q", d)
	}
	s, err := p.acquire(ctx, d)
	if err != nil {
		return "", cleanup, err
	}
	dsn, drop, err := freshDatabase(ctx, s.dsn, p.logf)
	if err != nil {
		p.release(d, s)
		return "", cleanup, err
	}
	var once sync.Once
	return dsn, func() {
		once.Do(func() {
			drop()
			p.release(d, s)
		})
	}, nil
}

// server is one dialect's server, shared by the Gets of a provider.
type server struct {
	ready   chan struct{} // closed when dsn/id/stop/err are set
	dsn     string
	id      string // the container's ID; "" for an existing server
	stop    func()
	err     error
	refs    int
	stopped bool
}

// acquire returns the dialect's server, starting it if needed, and counts
// a reference to it.
func (p *Provider) acquire(ctx context.Context, d store.Dialect) (*server, error) {
	p.mu.Lock()
	s := p.servers[d]
	if s == nil || s.stopped || (s.err != nil && isClosed(s.ready)) {
		s = &server{ready: make(chan struct{})}
		if p.servers == nil {
			p.servers = map[store.Dialect]*server{}
		}
		p.servers[d] = s
		p.mu.Unlock()
		s.dsn, s.id, s.stop, s.err = p.startServer(ctx, d)
		close(s.ready)
		p.mu.Lock()
	} else {
		p.mu.Unlock()
		select {
		case <-s.ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		p.mu.Lock()
	}
	defer p.mu.Unlock()
	if s.err != nil {
		return nil, s.err
	}
	if s.stopped {
		return nil, fmt.Errorf("containers: %s server stopped while starting (provider closed)", d)
	}
	s.refs++
	return s, nil
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// release drops a reference; the last one stops the server unless Keep.
func (p *Provider) release(d store.Dialect, s *server) {
	p.mu.Lock()
	s.refs--
	last := s.refs == 0 && !p.Keep && !s.stopped
	if last {
		s.stopped = true
		if p.servers[d] == s {
			delete(p.servers, d)
		}
	}
	p.mu.Unlock()
	if last {
		s.stop()
	}
}

// ContainerID returns the full ID of the container running dialect d's
// server, while one started by this provider runs (after a Get of d and
// before its server stops); otherwise "": SQLite, an existing server named
// by TWISTBENCH_*_DSN, a server not started yet or stopped. The benchmarks
// read the container's CPU time from its cgroup with it.
func (p *Provider) ContainerID(d store.Dialect) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.servers[d]
	if s == nil || !isClosed(s.ready) || s.err != nil || s.stopped {
		return ""
	}
	return s.id
}

// startServer returns the DSN of the dialect's server and the ID of its
// container: the user's server (no ID), or a new container's.
func (p *Provider) startServer(ctx context.Context, d store.Dialect) (string, string, func(), error) {
	c := p.Choose(ctx, d, true)
	if c.Err != nil {
		return "", "", func() {}, c.Err
	}
	if c.Source == "dsn" {
		return p.existingDSN(d), "", func() {}, nil
	}
	return p.start(ctx, d, c.Image)
}

// seq numbers the databases Get creates in this process.
var seq atomic.Int64

// freshDatabase creates an empty database on the server of base and
// returns its DSN and a function that drops it. If the account may not
// create databases (an existing server), base itself is returned.
func freshDatabase(ctx context.Context, base string, logf func(string, ...any)) (string, func(), error) {
	admin, err := sqlconn.Open(ctx, base)
	if err != nil {
		return "", nil, err
	}
	name := fmt.Sprintf("tb_%d_%d", os.Getpid(), seq.Add(1))
	var create, drop string
	switch admin.Dialect {
	case store.Postgres:
		create, drop = `CREATE DATABASE "`+name+`"`, `DROP DATABASE IF EXISTS "`+name+`" WITH (FORCE)`
	default:
		create, drop = "CREATE DATABASE `"+name+"`", "DROP DATABASE IF EXISTS `"+name+"`"
	}
	if _, err := admin.SQL.ExecContext(ctx, create); err != nil {
		admin.SQL.Close()
		logf("cannot create a database on %s (%v); using its own database as is", sqlconn.Redact(base), err)
		return base, func() {}, nil
	}
	return replaceDatabase(base, name), func() {
		defer admin.SQL.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := admin.SQL.ExecContext(ctx, drop); err != nil {
			logf("dropping database %s: %v", name, err)
		}
	}, nil
}

// replaceDatabase swaps the path (the database name) of a server DSN.
func replaceDatabase(dsn, name string) string {
	scheme, rest, _ := strings.Cut(dsn, "://")
	authority, query, hasQuery := strings.Cut(rest, "?")
	if i := strings.LastIndex(authority, "/"); i >= 0 {
		authority = authority[:i]
	}
	out := scheme + "://" + authority + "/" + name
	if hasQuery {
		out += "?" + query
	}
	return out
}

func (p *Provider) existingDSN(d store.Dialect) string {
	if d == store.Postgres {
		return p.PostgresDSN
	}
	return p.MySQLDSN
}

// Choose decides how dialect d is provided, without starting anything.
// With pull false a missing image is reported as what would be tried; with
// pull true it is pulled (bounded by PullTimeout). The answer with pull
// true is remembered.
func (p *Provider) Choose(ctx context.Context, d store.Dialect, pull bool) Choice {
	if d == store.SQLite {
		return Choice{Dialect: d, Source: "sqlite", Why: "a temporary file; needs nothing"}
	}
	if dsn := p.existingDSN(d); dsn != "" {
		env := EnvPostgresDSN
		if d == store.MySQL {
			env = EnvMySQLDSN
		}
		if _, err := sqlconn.DialectOf(dsn); err != nil {
			return Choice{Dialect: d, Source: "dsn", Err: fmt.Errorf("containers: %s: %w", env, err)}
		}
		return Choice{Dialect: d, Source: "dsn", Why: "existing server " + sqlconn.Redact(dsn) + " (" + env + ")"}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.choices[d]; ok {
		return *c
	}
	c := p.chooseImage(ctx, d, pull)
	if pull {
		if p.choices == nil {
			p.choices = map[store.Dialect]*Choice{}
		}
		p.choices[d] = &c
	}
	return c
}

// chooseImage runs with p.mu held.
func (p *Provider) chooseImage(ctx context.Context, d store.Dialect, pull bool) Choice {
	c := Choice{Dialect: d, Source: "image"}
	img, def, offline, env := p.PostgresImage, DefaultPostgresImage, OfflinePostgresImage, EnvPostgresImage
	if d == store.MySQL {
		img, def, offline, env = p.MySQLImage, DefaultMySQLImage, OfflineMySQLImage, EnvMySQLImage
	}
	explicit := img != ""
	if !explicit {
		img = def
	}
	e, err := p.engineLocked(ctx)
	if err != nil {
		dsnEnv := EnvPostgresDSN
		if d == store.MySQL {
			dsnEnv = EnvMySQLDSN
		}
		c.Err = p.unavailable(d, "no Docker engine answers (%v); to run it, start a Docker engine (on a host without a registry, then run %q) or set %s to an existing server", err, BuildCommand, dsnEnv)
		return c
	}
	origin := "the default"
	if explicit {
		origin = "chosen by flag or " + env
	}
	if e.hasImage(ctx, img) {
		c.Image, c.Why = img, img+" ("+origin+", present locally)"
		return c
	}
	if !pull {
		c.Image = img
		c.Why = img + " (" + origin + ") is not local: would try to pull it"
		if !explicit {
			if e.hasImage(ctx, offline) {
				c.Why += ", else use the offline-built " + offline + " (present)"
			} else {
				c.Why += ", else unavailable (" + BuildCommand + " builds " + offline + ")"
			}
		}
		return c
	}
	p.logf("%s: pulling %s (at most %s)", d, img, p.pullTimeout())
	pullErr := e.pull(ctx, img, p.pullTimeout())
	if pullErr == nil {
		c.Image, c.Why = img, img+" ("+origin+", pulled)"
		return c
	}
	if explicit {
		c.Err = p.unavailable(d, "image %s is not local and cannot be pulled: %v", img, pullErr)
		return c
	}
	if e.hasImage(ctx, offline) {
		c.Image = offline
		c.Why = fmt.Sprintf("%s (offline-built; %s is not local and cannot be pulled: %v)", offline, img, pullErr)
		return c
	}
	c.Err = p.unavailable(d, "%s is not local and cannot be pulled (%v), and no offline image %s is built: run %q", img, pullErr, offline, BuildCommand)
	return c
}

func (p *Provider) pullTimeout() time.Duration {
	if p.PullTimeout > 0 {
		return p.PullTimeout
	}
	return 20 * time.Second
}

func (p *Provider) startTimeout() time.Duration {
	if p.StartTimeout > 0 {
		return p.StartTimeout
	}
	return 2 * time.Minute
}

// engineLocked connects to the Docker engine once (p.mu held), decides
// about Ryuk before testcontainers reads its configuration, and removes
// containers left behind by dead processes.
func (p *Provider) engineLocked(ctx context.Context) (*engine, error) {
	if p.docker != nil || p.dockErr != nil {
		return p.docker, p.dockErr
	}
	e, err := connectEngine(ctx)
	if err != nil {
		p.dockErr = err
		return nil, err
	}
	p.docker = e
	if os.Getenv(EnvRyukDisabled) == "" && !e.hasImage(ctx, RyukImage) {
		// testcontainers reads this once, at its first use: this runs
		// before any container starts.
		os.Setenv(EnvRyukDisabled, "true")
		p.logf("testcontainers: %s is not local; Ryuk disabled, containers are terminated by their cleanup", RyukImage)
	}
	if os.Getenv("TESTCONTAINERS_HOST_OVERRIDE") == "" && localEngine() {
		// A local engine publishes ports on this machine: reach them on
		// loopback. Left to guess, testcontainers picks the default
		// gateway when /.dockerenv exists, an address this project must
		// not send traffic to.
		os.Setenv("TESTCONTAINERS_HOST_OVERRIDE", "127.0.0.1")
	}
	if n, err := e.prune(ctx, false); err != nil {
		p.logf("containers: removing leftovers: %v", err)
	} else if n > 0 {
		p.logf("containers: removed %d container(s) left behind by dead processes", n)
	}
	return e, nil
}

// Close terminates the servers still running (those Keep kept, and those
// whose Gets were not cleaned up) and releases the connection to the
// engine. A server still starting is waited for.
func (p *Provider) Close() error {
	p.mu.Lock()
	servers := p.servers
	p.servers = nil
	p.mu.Unlock()
	for _, s := range servers {
		<-s.ready
		p.mu.Lock()
		stop := !s.stopped && s.err == nil
		s.stopped = true
		p.mu.Unlock()
		if stop {
			s.stop()
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.docker != nil {
		err := p.docker.Close()
		p.docker = nil
		return err
	}
	return nil
}

// start runs a container of img for dialect d and returns its DSN and ID.
func (p *Provider) start(ctx context.Context, d store.Dialect, img string) (string, string, func(), error) {
	pw, err := password()
	if err != nil {
		return "", "", func() {}, err
	}
	// testcontainers' progress lines go where the provider's go.
	logger := testcontainers.WithLogger(tcLogger{p})
	labels := testcontainers.WithLabels(map[string]string{
		LabelManaged: "true",
		LabelOwner:   strconv.Itoa(os.Getpid()),
		LabelDialect: string(d),
	})
	t0 := time.Now()
	startCtx, cancel := context.WithTimeout(ctx, p.startTimeout())
	defer cancel()
	var (
		ctr    testcontainers.Container
		ready  *sqlReady
		runErr error
	)
	switch d {
	case store.Postgres:
		ready = &sqlReady{port: "5432/tcp", timeout: p.startTimeout(), dsn: func(hostPort string) string {
			return fmt.Sprintf("postgres://postgres:%s@%s/%s?sslmode=disable", pw, hostPort, DatabaseName)
		}}
		var c *tcpostgres.PostgresContainer
		c, runErr = tcpostgres.Run(startCtx, img,
			logger,
			tcpostgres.WithUsername("postgres"),
			tcpostgres.WithPassword(pw),
			tcpostgres.WithDatabase(DatabaseName),
			tcpostgres.WithSQLDriver("pgx"), // Snapshot/Restore through pgx, not docker exec
			labels,
			testcontainers.WithWaitStrategyAndDeadline(p.startTimeout(), ready),
		)
		if c != nil {
			ctr = c
		}
	case store.MySQL:
		ready = &sqlReady{port: "3306/tcp", greets: true, timeout: p.startTimeout(), dsn: func(hostPort string) string {
			return fmt.Sprintf("mysql://root:%s@%s/%s", pw, hostPort, DatabaseName)
		}}
		var c *tcmysql.MySQLContainer
		c, runErr = tcmysql.Run(startCtx, img,
			logger,
			// root: the tests create a database per test, which a user
			// limited to MYSQL_DATABASE cannot.
			tcmysql.WithUsername("root"),
			tcmysql.WithPassword(pw),
			tcmysql.WithDatabase(DatabaseName),
			labels,
			// Replaces the module's wait for "port: 3306  MySQL
			// Community Server", which MariaDB never logs.
			testcontainers.WithWaitStrategyAndDeadline(p.startTimeout(), ready),
		)
		if c != nil {
			ctr = c
		}
	}
	// Registered before the error check: a container that started but
	// failed its wait must still go.
	cleanup := func() {
		if ctr == nil {
			return
		}
		if err := testcontainers.TerminateContainer(ctr, testcontainers.StopTimeout(5*time.Second)); err != nil {
			p.logf("%s: terminating %s: %v", d, img, err)
		}
	}
	if runErr != nil {
		cleanup()
		return "", "", func() {}, fmt.Errorf("containers: starting %s for %s: %w", img, d, runErr)
	}
	p.logf("%s: %s answered SQL at %s in %s", d, img, ready.hostPort, time.Since(t0).Round(10*time.Millisecond))
	return ready.dsn(ready.hostPort), ctr.GetContainerID(), cleanup, nil
}

// localEngine reports whether the Docker engine is reached through a local
// socket (DOCKER_HOST unset, or unix://).
func localEngine() bool {
	h := os.Getenv("DOCKER_HOST")
	return h == "" || strings.HasPrefix(h, "unix://")
}

// sqlReady is the wait strategy of both modules: ready means that the
// server answers SQL over the published port, opened with sqlconn exactly
// as the tests will open it. It also finds which address reaches the port:
// testcontainers guesses the engine's address, and when this process runs
// in a container that shares the engine's network (/.dockerenv present, the
// engine local) its guess, the default gateway, does not answer while
// 127.0.0.1 does; the first candidate that accepts a TCP connection wins.
type sqlReady struct {
	port    string                       // the container port, "5432/tcp"
	greets  bool                         // the server speaks first (MySQL)
	dsn     func(hostPort string) string // the DSN for a reachable host:port
	timeout time.Duration

	hostPort string // set when ready
}

var (
	_ wait.Strategy        = (*sqlReady)(nil)
	_ wait.StrategyTimeout = (*sqlReady)(nil)
)

func (s *sqlReady) Timeout() *time.Duration { return &s.timeout }

func (s *sqlReady) String() string { return "SQL answers on " + s.port }

func (s *sqlReady) WaitUntilReady(ctx context.Context, target wait.StrategyTarget) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	var lastErr error
	for {
		state, err := target.State(ctx)
		switch {
		case err != nil:
			lastErr = err
		case !state.Running:
			return fmt.Errorf("container is %s (exit code %d) before answering SQL; see its log", state.Status, state.ExitCode)
		default:
			if lastErr = s.try(ctx, target); lastErr == nil {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w waiting for SQL on %s: %v", ctx.Err(), s.port, lastErr)
		case <-tick.C:
		}
	}
}

func (s *sqlReady) try(ctx context.Context, target wait.StrategyTarget) error {
	if s.hostPort == "" {
		mapped, err := target.MappedPort(ctx, s.port)
		if err != nil {
			return err
		}
		guess, err := target.Host(ctx)
		if err != nil {
			return err
		}
		candidates := []string{guess}
		if guess != "127.0.0.1" {
			candidates = append(candidates, "127.0.0.1")
		}
		if guess == "localhost" {
			candidates = candidates[1:] // skip name resolution
		}
		var dialErr error
		for _, h := range candidates {
			hp := net.JoinHostPort(h, mapped.Port())
			conn, err := (&net.Dialer{Timeout: 500 * time.Millisecond}).DialContext(ctx, "tcp", hp)
			if err != nil {
				dialErr = err
				continue
			}
			conn.Close()
			s.hostPort = hp
			break
		}
		if s.hostPort == "" {
			return dialErr
		}
	}
	octx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if s.greets {
		// Until the server listens, the engine's proxy accepts and closes
		// at once; go-sql-driver would log every such attempt on stderr.
		// A server that speaks first proves it listens by its greeting.
		conn, err := (&net.Dialer{}).DialContext(octx, "tcp", s.hostPort)
		if err != nil {
			return err
		}
		conn.SetReadDeadline(time.Now().Add(time.Second))
		_, err = conn.Read(make([]byte, 1))
		conn.Close()
		if err != nil {
			return fmt.Errorf("no greeting from the server: %w", err)
		}
	}
	db, err := sqlconn.Open(octx, s.dsn(s.hostPort))
	if err != nil {
		return err
	}
	return db.SQL.Close()
}

// tcLogger sends testcontainers' log lines to Provider.Logf.
type tcLogger struct{ p *Provider }

func (l tcLogger) Printf(format string, args ...any) { l.p.logf("testcontainers: "+format, args...) }

// password returns a random password: containers publish their port on
// every interface of the host.
func password() (string, error) {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("containers: password: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// engine is this package's own connection to the Docker engine, separate
// from testcontainers' so that Ryuk can be decided before testcontainers
// reads its configuration.
type engine struct {
	cli *client.Client
}

func connectEngine(ctx context.Context) (*engine, error) {
	cli, err := client.New(client.FromEnv)
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := cli.Ping(pctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		cli.Close()
		return nil, err
	}
	return &engine{cli: cli}, nil
}

func (e *engine) Close() error { return e.cli.Close() }

func (e *engine) hasImage(ctx context.Context, ref string) bool {
	_, err := e.cli.ImageInspect(ctx, ref)
	return err == nil
}

// pull pulls ref, giving up after timeout: the engine retries an
// unreachable registry for a long time on its own.
func (e *engine) pull(ctx context.Context, ref string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, err := e.cli.ImagePull(ctx, ref, client.ImagePullOptions{})
	if err != nil {
		return shortErr(err)
	}
	defer resp.Close()
	if err := resp.Wait(ctx); err != nil {
		return shortErr(err)
	}
	if !e.hasImage(ctx, ref) {
		return errors.New("pull finished but the image is not there")
	}
	return nil
}

// shortErr keeps the first line of an engine error: pull errors can be
// long and the reason must fit one line.
func shortErr(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return errors.New("timed out")
	}
	s, _, _ := strings.Cut(err.Error(), "\n")
	return errors.New(s)
}

// prune removes containers labelled by this package whose owner process is
// gone (all of them with all), and returns how many it removed.
func (e *engine) prune(ctx context.Context, all bool) (int, error) {
	list, err := e.cli.ContainerList(ctx, client.ContainerListOptions{
		All:     true,
		Filters: make(client.Filters).Add("label", LabelManaged+"=true"),
	})
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, c := range list.Items {
		if !all && ownerAlive(c.Labels[LabelOwner]) {
			continue
		}
		if _, err := e.cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

// ownerAlive reports whether the process that started a container still
// runs on this host. An unreadable label counts as alive: never remove what
// might be in use.
func ownerAlive(label string) bool {
	pid, err := strconv.Atoi(label)
	if err != nil || pid <= 0 {
		return true
	}
	if pid == os.Getpid() {
		return true
	}
	_, err = os.Stat("/proc/" + strconv.Itoa(pid))
	return err == nil || !errors.Is(err, os.ErrNotExist)
}

// Prune removes the containers this package started whose process is gone,
// or every one of them with all, and returns how many it removed.
func Prune(ctx context.Context, all bool) (int, error) {
	e, err := connectEngine(ctx)
	if err != nil {
		return 0, fmt.Errorf("containers: no Docker engine answers: %w", err)
	}
	defer e.Close()
	return e.prune(ctx, all)
}
