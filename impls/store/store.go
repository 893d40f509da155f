// Package store is the contract of the host-inventory data layer, modelled on
// the SQLAlchemy tutorial the project grew from: hosts, host groups and their
// membership, users whose names repeat, and a parent with its children.
//
// Back-ends (gormstore, sqlxstore, sqlstore) implement Store over one
// *sql.DB per dialect opened by package sqlconn, so that per dialect all of
// them use the same driver and the comparison measures the layer, not the
// driver. The conformance suite in conformance/storetest checks that every
// back-end on every dialect gives the same answers.
//
// # Concurrency
//
// A Store is safe for concurrent use by multiple goroutines (it wraps a
// connection pool). The Ops handed to a WithTx function belongs to that
// transaction and must not be used after the function returns, nor from
// several goroutines at once (a transaction is one connection).
//
// # Errors
//
// Every back-end maps its driver's errors to the sentinels below, on every
// dialect; callers match them with errors.Is. Input that breaks a documented
// rule is rejected with ErrInvalid before any SQL runs.
package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Sentinel errors, matched with errors.Is.
var (
	// ErrNotFound: the row named by a unique key does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrDuplicate: a unique constraint was violated (PostgreSQL 23505,
	// MySQL/MariaDB 1062, SQLite SQLITE_CONSTRAINT_UNIQUE/PRIMARYKEY).
	// Nothing of the failed call was written.
	ErrDuplicate = errors.New("store: duplicate")
	// ErrInvalid: the input breaks a rule of the contract; no SQL ran.
	ErrInvalid = errors.New("store: invalid input")
)

// Invalid returns an error wrapping ErrInvalid that names the field.
func Invalid(field, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalid, field, fmt.Sprintf(format, args...))
}

// Host is a row of hosts. Hostname and IPAddr are unique.
type Host struct {
	ID       int64  `json:"id"`
	Hostname string `json:"hostname"`
	IPAddr   string `json:"ip_addr"`
	Port     int    `json:"port"`
}

// DefaultPort is the port a host gets when created with Port 0 being
// meaningless for SSH; the schema's default is the same.
const DefaultPort = 22

// HostGroup is a row of host_groups. Name is unique.
type HostGroup struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
}

// User is a row of users. Names repeat.
type User struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
}

// Parent is a row of parent with its children (preloaded).
type Parent struct {
	ID       int64   `json:"id"`
	Name     string  `json:"name"`
	Children []Child `json:"children"`
}

// Child is a row of child.
type Child struct {
	ID       int64  `json:"id"`
	ParentID int64  `json:"parent_id"`
	Name     string `json:"name"`
}

// GroupCount is one row of the host count per group.
type GroupCount struct {
	Group string `json:"group"`
	Hosts int64  `json:"hosts"`
}

// HostLabel is the projection SELECT hostname AS name, ip_addr AS addr: the
// tutorial's query(User.name.label('name_label')).
type HostLabel struct {
	Name string `json:"name"`
	Addr string `json:"addr"`
}

// HostFilter selects hosts for update and delete. Non-empty fields are ANDed;
// within a field, values are ORed (an IN list). A filter with no field set
// would match every row and is rejected with ErrInvalid, so that a bug
// upstream cannot wipe the table.
type HostFilter struct {
	Hostnames []string `json:"hostnames,omitempty"`
	Ports     []int    `json:"ports,omitempty"`
}

// Empty reports whether f sets no field.
func (f HostFilter) Empty() bool { return len(f.Hostnames) == 0 && len(f.Ports) == 0 }

// Ops are the operations available both on a Store and inside a transaction.
type Ops interface {
	// CreateHost inserts h (Port 0 means DefaultPort) and sets h.ID.
	CreateHost(ctx context.Context, h *Host) error
	// CreateHosts inserts hosts in bulk (one statement or a few batches)
	// and sets each ID. All or nothing: on ErrDuplicate none is written.
	CreateHosts(ctx context.Context, hosts []Host) error
	// HostByName finds a host by hostname, or ErrNotFound.
	HostByName(ctx context.Context, hostname string) (Host, error)
	// HostsByNames finds the hosts whose hostname is in names, ordered by
	// hostname; an empty names returns an empty result and no error.
	HostsByNames(ctx context.Context, names []string) ([]Host, error)
	// HostsPage returns hosts ordered by id, skipping offset, at most limit
	// (like query(Host).order_by(Host.id)[offset:offset+limit]). An offset
	// past the end gives an empty page.
	HostsPage(ctx context.Context, offset, limit int) ([]Host, error)
	// HostLabels returns the labelled projection of every host, by id.
	HostLabels(ctx context.Context) ([]HostLabel, error)
	// UpdateHostPort sets port on the hosts f selects and returns the rows
	// matched (also those whose port already had that value, on every
	// dialect).
	UpdateHostPort(ctx context.Context, f HostFilter, port int) (int64, error)
	// DeleteHosts deletes the hosts f selects (and their memberships) and
	// returns how many hosts were deleted.
	DeleteHosts(ctx context.Context, f HostFilter) (int64, error)

	// CreateGroup inserts g and sets g.ID.
	CreateGroup(ctx context.Context, g *HostGroup) error
	// DeleteGroup deletes a group by name (and its memberships), or
	// ErrNotFound.
	DeleteGroup(ctx context.Context, name string) error
	// AddHostToGroup makes hostname a member of group: ErrNotFound if
	// either is missing, ErrDuplicate if it already is.
	AddHostToGroup(ctx context.Context, hostname, group string) error
	// HostsInGroup returns the group's hosts ordered by hostname (a join),
	// ErrNotFound if the group does not exist.
	HostsInGroup(ctx context.Context, group string) ([]Host, error)
	// GroupHostCounts returns every group with its host count, ordered by
	// name, groups without hosts included with 0 (outer join + group by).
	GroupHostCounts(ctx context.Context) ([]GroupCount, error)

	// CreateUsers inserts users in bulk and sets each ID.
	CreateUsers(ctx context.Context, users []User) error
	// UsersNamed returns the users called name, ordered by id.
	UsersNamed(ctx context.Context, name string) ([]User, error)

	// CreateParent inserts p and its children, setting every ID and
	// ParentID.
	CreateParent(ctx context.Context, p *Parent) error
	// ParentsWithChildren returns every parent ordered by id, each with its
	// children ordered by id, in a number of statements that does not grow
	// with the number of parents (no N+1).
	ParentsWithChildren(ctx context.Context) ([]Parent, error)
}

// Store is a host inventory over one database.
type Store interface {
	Ops
	// Migrate creates the schema if it is absent (idempotent).
	Migrate(ctx context.Context) error
	// WithTx runs fn in one transaction: it commits if fn returns nil and
	// rolls back everything if fn returns an error or panics (the panic is
	// re-raised after the rollback). fn's error is returned as is.
	WithTx(ctx context.Context, fn func(tx Ops) error) error
	// Close releases the back-end; it does not close a *sql.DB it was
	// given.
	Close() error
}

// Validation shared by every back-end so that ErrInvalid means the same
// thing everywhere. Limits are those of the schema.
const (
	MaxHostname  = 64
	MaxIPAddr    = 128
	MaxGroupName = 64
	MaxUserName  = 50
	MaxName      = 64 // parent.name and child.name
)

// ValidateHost checks h before any SQL runs; Port 0 is allowed and means
// DefaultPort (normalise with NormalizeHost).
func ValidateHost(h Host) error {
	if err := validText("hostname", h.Hostname, MaxHostname); err != nil {
		return err
	}
	if err := validText("ip_addr", h.IPAddr, MaxIPAddr); err != nil {
		return err
	}
	return ValidatePort(h.Port)
}

// NormalizeHost returns h with Port 0 replaced by DefaultPort.
func NormalizeHost(h Host) Host {
	if h.Port == 0 {
		h.Port = DefaultPort
	}
	return h
}

// ValidatePort checks a port number.
func ValidatePort(port int) error {
	if port < 0 || port > 65535 {
		return Invalid("port", "%d is outside 0-65535", port)
	}
	return nil
}

// ValidateGroupName checks a group name.
func ValidateGroupName(name string) error { return validText("name", name, MaxGroupName) }

// ValidateUserName checks a user name.
func ValidateUserName(name string) error { return validText("name", name, MaxUserName) }

// ValidateParent checks a parent and its children's names.
func ValidateParent(p Parent) error {
	if err := validText("parent.name", p.Name, MaxName); err != nil {
		return err
	}
	for i, c := range p.Children {
		if err := validText(fmt.Sprintf("children[%d].name", i), c.Name, MaxName); err != nil {
			return err
		}
	}
	return nil
}

// ValidateFilter rejects a filter that would match every row.
func ValidateFilter(f HostFilter) error {
	if f.Empty() {
		return Invalid("filter", "no field set; refusing to touch every host")
	}
	for _, p := range f.Ports {
		if err := ValidatePort(p); err != nil {
			return err
		}
	}
	return nil
}

func validText(field, s string, max int) error {
	switch {
	case s == "":
		return Invalid(field, "empty")
	case !utf8.ValidString(s):
		return Invalid(field, "not valid UTF-8")
	case strings.TrimSpace(s) != s:
		// MariaDB's default (PAD SPACE) collations compare "web1 " equal
		// to "web1" and MySQL 8's do not: refusing the spaces keeps every
		// dialect's answer the same.
		return Invalid(field, "leading or trailing white space")
	case utf8.RuneCountInString(s) > max:
		return Invalid(field, "%d characters, more than %d", utf8.RuneCountInString(s), max)
	}
	return nil
}

// Open opens a Store of one back-end on db. Each back-end package exports
// one as Open; the CLI keeps them in a registry by name.
type Open func(ctx context.Context, db *DB) (Store, error)
