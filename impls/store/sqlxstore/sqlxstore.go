// Package sqlxstore is the store contract over github.com/jmoiron/sqlx: the
// SQL is written by hand, as in sqlstore, but sqlx does the plumbing the
// way its users lean on it: rows scan into structs by their db tags
// (GetContext, SelectContext), inserts bind struct fields by name
// (NamedExecContext, NamedQueryContext, with a slice of structs expanding
// into one multi-row VALUES), IN lists expand with sqlx.In and placeholders
// come from Rebind. The DDL comes from package schema.
//
// sqlx picks its placeholder style from a driver name, not from the driver:
// the *sql.DB that package sqlconn opens is wrapped with the name sqlx knows
// for the dialect ("pgx" -> $1, "mysql" and "sqlite3" -> ?), whatever name
// the statement-counting wrapper registered.
//
// Ids: INSERT ... RETURNING id on PostgreSQL and SQLite, LastInsertId on
// MySQL, where the ids of one multi-row INSERT are consecutive from the
// first (InnoDB allocates them at once for an INSERT whose row count is
// known; auto_increment_increment must be 1). RETURNING gives no row order:
// ids are sorted and assigned in VALUES order, in which they were
// generated.
//
// Where it takes several statements, this back-end says so: HostsInGroup
// reads the group, then its hosts; AddHostToGroup looks up both ids in one
// query, then inserts; ParentsWithChildren reads the parents, then their
// children with one IN list (a preload, as GORM does it).
package sqlxstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jmoiron/sqlx"

	"github.com/twistbench/twistbench/impls/store"
	"github.com/twistbench/twistbench/impls/store/schema"
)

// Store is the sqlx back-end. It is safe for concurrent use.
type Store struct {
	ops
	raw *store.DB
}

var _ store.Store = (*Store)(nil)

// bindDriver is the driver name sqlx reads the placeholder style from.
var bindDriver = map[store.Dialect]string{
	store.Postgres: "pgx",
	store.MySQL:    "mysql",
	store.SQLite:   "sqlite3",
}

// maxParams is the most bind parameters one statement may carry: 65535 on
// PostgreSQL's wire protocol and MySQL's prepared statements, 32766 on
// SQLite (SQLITE_MAX_VARIABLE_NUMBER since 3.32).
var maxParams = map[store.Dialect]int{store.Postgres: 65535, store.MySQL: 65535, store.SQLite: 32766}

// maxBatchRows caps the rows of one INSERT: thousands of rows in one
// statement cost more to bind and parse than they save in round trips.
const maxBatchRows = 1000

// Open returns a Store over db. It does not touch the database (Migrate
// creates the schema) and does not take ownership of db.SQL.
func Open(ctx context.Context, db *store.DB) (store.Store, error) {
	if db == nil || db.SQL == nil {
		return nil, errors.New("sqlxstore: open: no database")
	}
	name, ok := bindDriver[db.Dialect]
	if !ok {
		return nil, fmt.Errorf("sqlxstore: unknown dialect %q", db.Dialect)
	}
	x := sqlx.NewDb(db.SQL, name)
	return &Store{ops: ops{x: x, pool: x, dialect: db.Dialect}, raw: db}, nil
}

// Migrate creates the schema of package schema if it is absent.
func (s *Store) Migrate(ctx context.Context) error { return schema.Create(ctx, s.raw) }

// Close does nothing: the *sql.DB belongs to the caller (sqlx.DB.Close
// would close it).
func (s *Store) Close() error { return nil }

// WithTx runs fn in one transaction (see store.Store); the deferred
// rollback also runs while a panic of fn unwinds.
func (s *Store) WithTx(ctx context.Context, fn func(tx store.Ops) error) error {
	var fnErr error
	err := inTx(ctx, s.pool, func(tx *sqlx.Tx) error {
		fnErr = fn(ops{x: tx, dialect: s.dialect})
		return fnErr
	})
	if err != nil && fnErr == nil {
		return wrap("transaction", err) // begin or commit failed
	}
	return err // fn's error, as is
}

// ops implements store.Ops over the pool or one transaction.
type ops struct {
	x       sqlx.ExtContext // *sqlx.DB or *sqlx.Tx
	pool    *sqlx.DB        // nil inside a transaction
	dialect store.Dialect
}

// inTx runs fn in a new transaction on db, committing if fn returns nil.
// Errors come back unwrapped: the caller names the operation.
func inTx(ctx context.Context, db *sqlx.DB, fn func(tx *sqlx.Tx) error) error {
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	done := false
	defer func() {
		if !done {
			_ = tx.Rollback() // fn's error or panic is what the caller needs
		}
	}()
	if err := fn(tx); err != nil {
		return err
	}
	done = true
	return tx.Commit()
}

// atomic runs fn in a transaction: a new one on the pool, or the current
// one inside WithTx.
func (o ops) atomic(ctx context.Context, fn func(o ops) error) error {
	if o.pool == nil {
		return fn(o)
	}
	return inTx(ctx, o.pool, func(tx *sqlx.Tx) error { return fn(ops{x: tx, dialect: o.dialect}) })
}

// Rows as sqlx scans them: the db tags name the columns of package schema.
// Each converts to its store type (same fields, tags aside).
type (
	hostRow struct {
		ID       int64  `db:"id"`
		Hostname string `db:"hostname"`
		IPAddr   string `db:"ip_addr"`
		Port     int    `db:"port"`
	}
	groupRow struct {
		ID   int64  `db:"id"`
		Name string `db:"name"`
	}
	userRow struct {
		ID   int64  `db:"id"`
		Name string `db:"name"`
	}
	parentRow struct {
		ID   int64  `db:"id"`
		Name string `db:"name"`
	}
	childRow struct {
		ID       int64  `db:"id"`
		ParentID int64  `db:"parent_id"`
		Name     string `db:"name"`
	}
	labelRow struct {
		Name string `db:"name"`
		Addr string `db:"addr"`
	}
	countRow struct {
		Group string `db:"group_name"`
		Hosts int64  `db:"hosts"`
	}
	memberRow struct {
		HostID  sql.NullInt64 `db:"host_id"`
		GroupID sql.NullInt64 `db:"group_id"`
	}
)

const selectHosts = "SELECT id, hostname, ip_addr, port FROM hosts"

// convert turns scanned rows into their store type.
func convert[R, T any](rows []R, conv func(R) T) []T {
	out := make([]T, len(rows))
	for i, r := range rows {
		out[i] = conv(r)
	}
	return out
}

func toHost(r hostRow) store.Host { return store.Host(r) }

// CreateHost implements store.Ops.
func (o ops) CreateHost(ctx context.Context, h *store.Host) error {
	if err := store.ValidateHost(*h); err != nil {
		return err
	}
	row := hostRow(store.NormalizeHost(*h))
	ids, err := o.insert(ctx, "INSERT INTO hosts (hostname, ip_addr, port) VALUES (:hostname, :ip_addr, :port)", row, 1)
	if err != nil {
		return wrap("create host", err)
	}
	row.ID = ids[0]
	*h = store.Host(row)
	return nil
}

// CreateHosts implements store.Ops.
func (o ops) CreateHosts(ctx context.Context, hosts []store.Host) error {
	rows := make([]hostRow, len(hosts))
	for i, h := range hosts {
		if err := store.ValidateHost(h); err != nil {
			return fmt.Errorf("hosts[%d]: %w", i, err)
		}
		rows[i] = hostRow(store.NormalizeHost(h))
	}
	err := insertBatches(ctx, o, "INSERT INTO hosts (hostname, ip_addr, port) VALUES (:hostname, :ip_addr, :port)",
		rows, 3, func(i int, id int64) { rows[i].ID = id })
	if err != nil {
		return wrap("create hosts", err)
	}
	for i, r := range rows {
		hosts[i] = store.Host(r)
	}
	return nil
}

// HostByName implements store.Ops.
func (o ops) HostByName(ctx context.Context, hostname string) (store.Host, error) {
	var r hostRow
	err := sqlx.GetContext(ctx, o.x, &r, o.x.Rebind(selectHosts+" WHERE hostname = ?"), hostname)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Host{}, fmt.Errorf("sqlxstore: host %q: %w", hostname, store.ErrNotFound)
	}
	if err != nil {
		return store.Host{}, wrap("host by name", err)
	}
	return toHost(r), nil
}

// HostsByNames implements store.Ops.
func (o ops) HostsByNames(ctx context.Context, names []string) ([]store.Host, error) {
	if len(names) == 0 {
		return []store.Host{}, nil // sqlx.In refuses an empty list, and there is nothing to ask
	}
	if err := o.checkParams("names", len(names)); err != nil {
		return nil, err
	}
	q, args, err := sqlx.In(selectHosts+" WHERE hostname IN (?) ORDER BY hostname", names)
	if err != nil {
		return nil, wrap("hosts by names", err)
	}
	var rows []hostRow
	if err := sqlx.SelectContext(ctx, o.x, &rows, o.x.Rebind(q), args...); err != nil {
		return nil, wrap("hosts by names", err)
	}
	return convert(rows, toHost), nil
}

// HostsPage implements store.Ops. A negative offset or limit is ErrInvalid.
func (o ops) HostsPage(ctx context.Context, offset, limit int) ([]store.Host, error) {
	if offset < 0 {
		return nil, store.Invalid("offset", "%d is negative", offset)
	}
	if limit < 0 {
		return nil, store.Invalid("limit", "%d is negative", limit)
	}
	if limit == 0 {
		return []store.Host{}, nil
	}
	var rows []hostRow
	if err := sqlx.SelectContext(ctx, o.x, &rows, o.x.Rebind(selectHosts+" ORDER BY id LIMIT ? OFFSET ?"), limit, offset); err != nil {
		return nil, wrap("hosts page", err)
	}
	return convert(rows, toHost), nil
}

// HostLabels implements store.Ops.
func (o ops) HostLabels(ctx context.Context) ([]store.HostLabel, error) {
	var rows []labelRow
	if err := sqlx.SelectContext(ctx, o.x, &rows, "SELECT hostname AS name, ip_addr AS addr FROM hosts ORDER BY id"); err != nil {
		return nil, wrap("host labels", err)
	}
	return convert(rows, func(r labelRow) store.HostLabel { return store.HostLabel(r) }), nil
}

// filterSQL returns the WHERE clause of f with sqlx.In's "(?)" for each
// list, and the lists as arguments.
func filterSQL(f store.HostFilter) (string, []any) {
	var conds []string
	var args []any
	if len(f.Hostnames) > 0 {
		conds, args = append(conds, "hostname IN (?)"), append(args, f.Hostnames)
	}
	if len(f.Ports) > 0 {
		conds, args = append(conds, "port IN (?)"), append(args, f.Ports)
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

// UpdateHostPort implements store.Ops.
func (o ops) UpdateHostPort(ctx context.Context, f store.HostFilter, port int) (int64, error) {
	if err := store.ValidatePort(port); err != nil {
		return 0, err
	}
	if err := store.ValidateFilter(f); err != nil {
		return 0, err
	}
	if err := o.checkParams("filter", 1+len(f.Hostnames)+len(f.Ports)); err != nil {
		return 0, err
	}
	where, args := filterSQL(f)
	n, err := o.execIn(ctx, "UPDATE hosts SET port = ?"+where, append([]any{port}, args...)...)
	return n, wrap("update host port", err)
}

// DeleteHosts implements store.Ops. Memberships go by ON DELETE CASCADE.
func (o ops) DeleteHosts(ctx context.Context, f store.HostFilter) (int64, error) {
	if err := store.ValidateFilter(f); err != nil {
		return 0, err
	}
	if err := o.checkParams("filter", len(f.Hostnames)+len(f.Ports)); err != nil {
		return 0, err
	}
	where, args := filterSQL(f)
	n, err := o.execIn(ctx, "DELETE FROM hosts"+where, args...)
	return n, wrap("delete hosts", err)
}

// CreateGroup implements store.Ops.
func (o ops) CreateGroup(ctx context.Context, g *store.HostGroup) error {
	if err := store.ValidateGroupName(g.Name); err != nil {
		return err
	}
	ids, err := o.insert(ctx, "INSERT INTO host_groups (name) VALUES (:name)", groupRow(*g), 1)
	if err != nil {
		return wrap("create group", err)
	}
	g.ID = ids[0]
	return nil
}

// DeleteGroup implements store.Ops. Memberships go by ON DELETE CASCADE.
func (o ops) DeleteGroup(ctx context.Context, name string) error {
	res, err := o.x.ExecContext(ctx, o.x.Rebind("DELETE FROM host_groups WHERE name = ?"), name)
	if err != nil {
		return wrap("delete group", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return wrap("delete group", err)
	} else if n == 0 {
		return fmt.Errorf("sqlxstore: group %q: %w", name, store.ErrNotFound)
	}
	return nil
}

// AddHostToGroup implements store.Ops: both ids in one query (scanned into
// a struct whose NULLs say what is missing), then a named insert of that
// struct. A host or group deleted between the two fails the foreign key,
// which is reported as ErrNotFound too.
func (o ops) AddHostToGroup(ctx context.Context, hostname, group string) error {
	op := fmt.Sprintf("add host %q to group %q", hostname, group)
	var m memberRow
	err := sqlx.GetContext(ctx, o.x, &m, o.x.Rebind(`SELECT
(SELECT id FROM hosts WHERE hostname = ?) AS host_id,
(SELECT id FROM host_groups WHERE name = ?) AS group_id`), hostname, group)
	switch {
	case err != nil:
		return wrap(op, err)
	case !m.HostID.Valid:
		return fmt.Errorf("sqlxstore: %s: host %q: %w", op, hostname, store.ErrNotFound)
	case !m.GroupID.Valid:
		return fmt.Errorf("sqlxstore: %s: group %q: %w", op, group, store.ErrNotFound)
	}
	_, err = sqlx.NamedExecContext(ctx, o.x, "INSERT INTO host_group_members (host_id, group_id) VALUES (:host_id, :group_id)", m)
	if isForeignKey(err) {
		return fmt.Errorf("sqlxstore: %s: deleted meanwhile: %w", op, store.ErrNotFound)
	}
	return wrap(op, err)
}

// HostsInGroup implements store.Ops: the group's id (or ErrNotFound), then
// its hosts through the membership table. Outside a transaction the two
// reads are not one snapshot: a group deleted between them reads as empty.
func (o ops) HostsInGroup(ctx context.Context, group string) ([]store.Host, error) {
	var id int64
	err := sqlx.GetContext(ctx, o.x, &id, o.x.Rebind("SELECT id FROM host_groups WHERE name = ?"), group)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sqlxstore: group %q: %w", group, store.ErrNotFound)
	}
	if err != nil {
		return nil, wrap("hosts in group", err)
	}
	var rows []hostRow
	err = sqlx.SelectContext(ctx, o.x, &rows, o.x.Rebind(`SELECT h.id, h.hostname, h.ip_addr, h.port
FROM hosts h JOIN host_group_members m ON m.host_id = h.id
WHERE m.group_id = ? ORDER BY h.hostname`), id)
	if err != nil {
		return nil, wrap("hosts in group", err)
	}
	return convert(rows, toHost), nil
}

// GroupHostCounts implements store.Ops.
func (o ops) GroupHostCounts(ctx context.Context) ([]store.GroupCount, error) {
	var rows []countRow
	err := sqlx.SelectContext(ctx, o.x, &rows, `SELECT g.name AS group_name, COUNT(m.host_id) AS hosts
FROM host_groups g LEFT JOIN host_group_members m ON m.group_id = g.id
GROUP BY g.id, g.name ORDER BY g.name`)
	if err != nil {
		return nil, wrap("group host counts", err)
	}
	return convert(rows, func(r countRow) store.GroupCount { return store.GroupCount(r) }), nil
}

// CreateUsers implements store.Ops.
func (o ops) CreateUsers(ctx context.Context, users []store.User) error {
	rows := make([]userRow, len(users))
	for i, u := range users {
		if err := store.ValidateUserName(u.Name); err != nil {
			return fmt.Errorf("users[%d]: %w", i, err)
		}
		rows[i] = userRow(u)
	}
	err := insertBatches(ctx, o, "INSERT INTO users (name) VALUES (:name)", rows, 1,
		func(i int, id int64) { rows[i].ID = id })
	if err != nil {
		return wrap("create users", err)
	}
	for i, r := range rows {
		users[i] = store.User(r)
	}
	return nil
}

// UsersNamed implements store.Ops.
func (o ops) UsersNamed(ctx context.Context, name string) ([]store.User, error) {
	var rows []userRow
	if err := sqlx.SelectContext(ctx, o.x, &rows, o.x.Rebind("SELECT id, name FROM users WHERE name = ? ORDER BY id"), name); err != nil {
		return nil, wrap("users named", err)
	}
	return convert(rows, func(r userRow) store.User { return store.User(r) }), nil
}

// CreateParent implements store.Ops: the parent, then its children in bulk,
// in one transaction.
func (o ops) CreateParent(ctx context.Context, p *store.Parent) error {
	if err := store.ValidateParent(*p); err != nil {
		return err
	}
	children := make([]childRow, len(p.Children))
	var pid int64
	err := o.atomic(ctx, func(o ops) error {
		ids, err := o.insert(ctx, "INSERT INTO parent (name) VALUES (:name)", parentRow{Name: p.Name}, 1)
		if err != nil {
			return err
		}
		pid = ids[0]
		for i, c := range p.Children {
			children[i] = childRow{ParentID: pid, Name: c.Name}
		}
		return insertBatches(ctx, o, "INSERT INTO child (parent_id, name) VALUES (:parent_id, :name)", children, 2,
			func(i int, id int64) { children[i].ID = id })
	})
	if err != nil {
		return wrap("create parent", err)
	}
	p.ID = pid
	for i, c := range children {
		p.Children[i] = store.Child(c)
	}
	return nil
}

// ParentsWithChildren implements store.Ops as a preload: the parents, then
// the children of all of them with one IN list (one more per maxParams
// parents), grouped in Go.
func (o ops) ParentsWithChildren(ctx context.Context) ([]store.Parent, error) {
	var parents []parentRow
	if err := sqlx.SelectContext(ctx, o.x, &parents, "SELECT id, name FROM parent ORDER BY id"); err != nil {
		return nil, wrap("parents with children", err)
	}
	out := make([]store.Parent, len(parents))
	index := make(map[int64]int, len(parents))
	ids := make([]int64, len(parents))
	for i, p := range parents {
		out[i] = store.Parent{ID: p.ID, Name: p.Name, Children: []store.Child{}}
		index[p.ID] = i
		ids[i] = p.ID
	}
	for chunk := range slices.Chunk(ids, maxParams[o.dialect]) {
		q, args, err := sqlx.In("SELECT id, parent_id, name FROM child WHERE parent_id IN (?) ORDER BY parent_id, id", chunk)
		if err != nil {
			return nil, wrap("parents with children", err)
		}
		var children []childRow
		if err := sqlx.SelectContext(ctx, o.x, &children, o.x.Rebind(q), args...); err != nil {
			return nil, wrap("parents with children", err)
		}
		for _, c := range children {
			// The parent of a child inserted after the first query is
			// not in index: the child belongs to a later snapshot.
			if i, ok := index[c.ParentID]; ok {
				out[i].Children = append(out[i].Children, store.Child(c))
			}
		}
	}
	return out, nil
}

// checkParams rejects, before any SQL, an IN list the database would
// refuse for its number of parameters.
func (o ops) checkParams(field string, n int) error {
	if limit := maxParams[o.dialect]; n > limit {
		return store.Invalid(field, "%d values, more than the %d parameters one %s statement takes", n, limit, o.dialect)
	}
	return nil
}

// execIn expands the IN lists of query with sqlx.In, rebinds it, runs it
// and returns the rows affected.
func (o ops) execIn(ctx context.Context, query string, args ...any) (int64, error) {
	q, args, err := sqlx.In(query, args...)
	if err != nil {
		return 0, err
	}
	res, err := o.x.ExecContext(ctx, o.x.Rebind(q), args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// insertBatches inserts rows (of cols columns each) with the named insert
// query, a batch of them per statement, in one transaction when there is
// more than one batch, and reports each row's id through setID.
func insertBatches[R any](ctx context.Context, o ops, query string, rows []R, cols int, setID func(i int, id int64)) error {
	if len(rows) == 0 {
		return nil
	}
	size := min(maxBatchRows, maxParams[o.dialect]/cols)
	run := func(o ops) error {
		for lo := 0; lo < len(rows); lo += size {
			hi := min(lo+size, len(rows))
			ids, err := o.insert(ctx, query, rows[lo:hi], hi-lo)
			if err != nil {
				return err
			}
			for i, id := range ids {
				setID(lo+i, id)
			}
		}
		return nil
	}
	if len(rows) <= size {
		return run(o)
	}
	return o.atomic(ctx, run)
}

// insert runs a named INSERT of arg (a struct, or a slice of n structs that
// sqlx expands into one multi-row VALUES) and returns the n ids in row
// order.
func (o ops) insert(ctx context.Context, query string, arg any, n int) ([]int64, error) {
	if o.dialect == store.MySQL {
		res, err := sqlx.NamedExecContext(ctx, o.x, query, arg)
		if err != nil {
			return nil, err
		}
		first, err := res.LastInsertId()
		if err != nil {
			return nil, err
		}
		ids := make([]int64, n)
		for i := range ids {
			ids[i] = first + int64(i) // consecutive: see the package comment
		}
		return ids, nil
	}
	rows, err := sqlx.NamedQueryContext(ctx, o.x, query+" RETURNING id", arg)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	ids := make([]int64, 0, n)
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(ids) != n {
		return nil, fmt.Errorf("%d ids returned for %d rows", len(ids), n)
	}
	slices.Sort(ids) // RETURNING has no order; ids grow in VALUES order
	return ids, nil
}
