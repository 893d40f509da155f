// Package sqlstore is the store contract in hand-written SQL over
// database/sql: the baseline the ORM layers (gormstore, sqlxstore) are
// measured against. Every statement is spelled out below, per dialect where
// the dialects differ, and run through the *sql.DB that package sqlconn
// opened, so it uses the same driver as the other back-ends.
//
// Choices worth knowing:
//   - Ids of inserted rows come from INSERT ... RETURNING id on PostgreSQL
//     and SQLite (3.35+), and from LastInsertId on MySQL, which has no
//     RETURNING. For a multi-row INSERT, MySQL reports the first id and
//     InnoDB allocates the ids of one simple INSERT consecutively (true for
//     every innodb_autoinc_lock_mode when the row count is known up front;
//     GORM's CreateInBatches assumes the same); auto_increment_increment
//     must be 1 (it is unless the server is a Galera/multi-primary node).
//     RETURNING gives no row order, so the returned ids are sorted and
//     assigned in VALUES order: ids of one statement increase in row order.
//   - Writes that need several statements (a bulk insert in more than one
//     batch, a parent with its children) run in a transaction of their own,
//     or in the caller's inside WithTx, so that they are all or nothing.
//   - Reads that the contract wants in bounded statements are single
//     joins: HostsInGroup (group and members, and whether the group exists,
//     in one query) and ParentsWithChildren (one LEFT JOIN, whatever the
//     number of parents).
//   - UPDATE reports the rows it matched on MySQL only because sqlconn sets
//     clientFoundRows=true; PostgreSQL and SQLite always do.
package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"

	"github.com/twistbench/twistbench/impls/store"
	"github.com/twistbench/twistbench/impls/store/schema"
)

// Store is the hand-written SQL back-end. It is safe for concurrent use.
type Store struct {
	ops
	db *store.DB
}

var _ store.Store = (*Store)(nil)

// Open returns a Store over db. It does not touch the database (Migrate
// creates the schema) and does not take ownership of db.SQL.
func Open(ctx context.Context, db *store.DB) (store.Store, error) {
	if db == nil || db.SQL == nil {
		return nil, fmt.Errorf("sqlstore: open: no database")
	}
	d, err := dialectOf(db.Dialect)
	if err != nil {
		return nil, err
	}
	return &Store{ops: ops{q: db.SQL, pool: db.SQL, d: d}, db: db}, nil
}

// Migrate creates the schema of package schema if it is absent.
func (s *Store) Migrate(ctx context.Context) error { return schema.Create(ctx, s.db) }

// Close does nothing: the *sql.DB belongs to the caller.
func (s *Store) Close() error { return nil }

// WithTx runs fn in one transaction (see store.Store). The rollback is
// deferred, so it also runs while a panic of fn unwinds, and the panic goes
// on up unchanged.
func (s *Store) WithTx(ctx context.Context, fn func(tx store.Ops) error) error {
	tx, err := s.db.SQL.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlstore: begin: %w", err)
	}
	done := false
	defer func() {
		if !done {
			_ = tx.Rollback() // fn's error (or panic) is what the caller needs
		}
	}()
	if err := fn(ops{q: tx, d: s.d}); err != nil {
		return err
	}
	done = true
	if err := tx.Commit(); err != nil {
		return wrap("commit", err)
	}
	return nil
}

// querier is what *sql.DB and *sql.Tx have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// ops implements store.Ops over the pool or over one transaction.
type ops struct {
	q    querier
	pool *sql.DB // nil inside a transaction
	d    *dialect
}

// atomic runs fn in a transaction: a new one on the pool, or the current
// one inside WithTx (there is no nesting; the caller's transaction already
// gives all or nothing).
func (o ops) atomic(ctx context.Context, fn func(o ops) error) error {
	if o.pool == nil {
		return fn(o)
	}
	tx, err := o.pool.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	done := false
	defer func() {
		if !done {
			_ = tx.Rollback()
		}
	}()
	if err := fn(ops{q: tx, d: o.d}); err != nil {
		return err
	}
	done = true
	return tx.Commit() // the caller names the operation
}

const hostColumns = "id, hostname, ip_addr, port"

// CreateHost implements store.Ops.
func (o ops) CreateHost(ctx context.Context, h *store.Host) error {
	if err := store.ValidateHost(*h); err != nil {
		return err
	}
	n := store.NormalizeHost(*h)
	ids, err := o.insert(ctx, "hosts", []string{"hostname", "ip_addr", "port"}, 1,
		func(_ int, args []any) []any { return append(args, n.Hostname, n.IPAddr, n.Port) })
	if err != nil {
		return wrap("create host", err)
	}
	n.ID = ids[0]
	*h = n
	return nil
}

// CreateHosts implements store.Ops.
func (o ops) CreateHosts(ctx context.Context, hosts []store.Host) error {
	for i, h := range hosts {
		if err := store.ValidateHost(h); err != nil {
			return fmt.Errorf("hosts[%d]: %w", i, err)
		}
	}
	if len(hosts) == 0 {
		return nil
	}
	var ids []int64
	err := o.batches(ctx, len(hosts), 3, func(o ops, lo, hi int) error {
		got, err := o.insert(ctx, "hosts", []string{"hostname", "ip_addr", "port"}, hi-lo,
			func(i int, args []any) []any {
				h := store.NormalizeHost(hosts[lo+i])
				return append(args, h.Hostname, h.IPAddr, h.Port)
			})
		ids = append(ids, got...)
		return err
	})
	if err != nil {
		return wrap("create hosts", err)
	}
	for i := range hosts {
		hosts[i] = store.NormalizeHost(hosts[i])
		hosts[i].ID = ids[i]
	}
	return nil
}

// HostByName implements store.Ops.
func (o ops) HostByName(ctx context.Context, hostname string) (store.Host, error) {
	var h store.Host
	err := o.q.QueryRowContext(ctx, o.d.hostByName, hostname).Scan(&h.ID, &h.Hostname, &h.IPAddr, &h.Port)
	if err == sql.ErrNoRows {
		return h, fmt.Errorf("sqlstore: host %q: %w", hostname, store.ErrNotFound)
	}
	return h, wrap("host by name", err)
}

// HostsByNames implements store.Ops.
func (o ops) HostsByNames(ctx context.Context, names []string) ([]store.Host, error) {
	if len(names) == 0 {
		return []store.Host{}, nil
	}
	if err := o.d.checkParams("names", len(names)); err != nil {
		return nil, err
	}
	var b strings.Builder
	b.WriteString("SELECT " + hostColumns + " FROM hosts WHERE hostname IN ")
	args := in(o.d, &b, nil, names)
	b.WriteString(" ORDER BY hostname")
	hosts, err := o.hosts(ctx, b.String(), args...)
	return hosts, wrap("hosts by names", err)
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
	hosts, err := o.hosts(ctx, o.d.hostsPage, limit, offset)
	return hosts, wrap("hosts page", err)
}

// HostLabels implements store.Ops.
func (o ops) HostLabels(ctx context.Context) ([]store.HostLabel, error) {
	rows, err := o.q.QueryContext(ctx, "SELECT hostname AS name, ip_addr AS addr FROM hosts ORDER BY id")
	if err != nil {
		return nil, wrap("host labels", err)
	}
	defer rows.Close()
	out := []store.HostLabel{}
	for rows.Next() {
		var l store.HostLabel
		if err := rows.Scan(&l.Name, &l.Addr); err != nil {
			return nil, wrap("host labels", err)
		}
		out = append(out, l)
	}
	return out, wrap("host labels", rows.Err())
}

// UpdateHostPort implements store.Ops.
func (o ops) UpdateHostPort(ctx context.Context, f store.HostFilter, port int) (int64, error) {
	if err := store.ValidatePort(port); err != nil {
		return 0, err
	}
	if err := store.ValidateFilter(f); err != nil {
		return 0, err
	}
	if err := o.d.checkParams("filter", 1+len(f.Hostnames)+len(f.Ports)); err != nil {
		return 0, err
	}
	var b strings.Builder
	b.WriteString("UPDATE hosts SET port = " + o.d.ph(1))
	args := o.d.where(&b, []any{port}, f)
	n, err := o.exec(ctx, b.String(), args...)
	return n, wrap("update host port", err)
}

// DeleteHosts implements store.Ops. Memberships go by ON DELETE CASCADE.
func (o ops) DeleteHosts(ctx context.Context, f store.HostFilter) (int64, error) {
	if err := store.ValidateFilter(f); err != nil {
		return 0, err
	}
	if err := o.d.checkParams("filter", len(f.Hostnames)+len(f.Ports)); err != nil {
		return 0, err
	}
	var b strings.Builder
	b.WriteString("DELETE FROM hosts")
	args := o.d.where(&b, nil, f)
	n, err := o.exec(ctx, b.String(), args...)
	return n, wrap("delete hosts", err)
}

// CreateGroup implements store.Ops.
func (o ops) CreateGroup(ctx context.Context, g *store.HostGroup) error {
	if err := store.ValidateGroupName(g.Name); err != nil {
		return err
	}
	ids, err := o.insert(ctx, "host_groups", []string{"name"}, 1,
		func(_ int, args []any) []any { return append(args, g.Name) })
	if err != nil {
		return wrap("create group", err)
	}
	g.ID = ids[0]
	return nil
}

// DeleteGroup implements store.Ops. Memberships go by ON DELETE CASCADE.
func (o ops) DeleteGroup(ctx context.Context, name string) error {
	n, err := o.exec(ctx, o.d.deleteGroup, name)
	if err != nil {
		return wrap("delete group", err)
	}
	if n == 0 {
		return fmt.Errorf("sqlstore: group %q: %w", name, store.ErrNotFound)
	}
	return nil
}

// AddHostToGroup implements store.Ops in one INSERT ... SELECT: the join of
// the host and the group by name yields the row to insert, or nothing when
// either is missing; the primary key turns a second membership into a
// unique violation. Only when nothing was inserted does a second query find
// out which name was missing, for the error message.
func (o ops) AddHostToGroup(ctx context.Context, hostname, group string) error {
	n, err := o.exec(ctx, o.d.addMember, hostname, group)
	if err != nil {
		return wrap(fmt.Sprintf("add host %q to group %q", hostname, group), err)
	}
	if n == 1 {
		return nil
	}
	var hosts, groups int
	if err := o.q.QueryRowContext(ctx, o.d.memberExists, hostname, group).Scan(&hosts, &groups); err != nil {
		return wrap("add host to group", err)
	}
	missing := fmt.Sprintf("host %q", hostname)
	if hosts > 0 {
		missing = fmt.Sprintf("group %q", group)
	}
	return fmt.Errorf("sqlstore: add host %q to group %q: %s: %w", hostname, group, missing, store.ErrNotFound)
}

// HostsInGroup implements store.Ops with one LEFT JOIN from the group: no
// row means no such group, one row without a host means an empty group.
func (o ops) HostsInGroup(ctx context.Context, group string) ([]store.Host, error) {
	rows, err := o.q.QueryContext(ctx, o.d.hostsInGroup, group)
	if err != nil {
		return nil, wrap("hosts in group", err)
	}
	defer rows.Close()
	found := false
	out := []store.Host{}
	for rows.Next() {
		found = true
		var id, port sql.NullInt64
		var name, addr sql.NullString
		if err := rows.Scan(&id, &name, &addr, &port); err != nil {
			return nil, wrap("hosts in group", err)
		}
		if id.Valid {
			out = append(out, store.Host{ID: id.Int64, Hostname: name.String, IPAddr: addr.String, Port: int(port.Int64)})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, wrap("hosts in group", err)
	}
	if !found {
		return nil, fmt.Errorf("sqlstore: group %q: %w", group, store.ErrNotFound)
	}
	return out, nil
}

// GroupHostCounts implements store.Ops.
func (o ops) GroupHostCounts(ctx context.Context) ([]store.GroupCount, error) {
	rows, err := o.q.QueryContext(ctx, `SELECT g.name, COUNT(m.host_id)
FROM host_groups g LEFT JOIN host_group_members m ON m.group_id = g.id
GROUP BY g.id, g.name ORDER BY g.name`)
	if err != nil {
		return nil, wrap("group host counts", err)
	}
	defer rows.Close()
	out := []store.GroupCount{}
	for rows.Next() {
		var c store.GroupCount
		if err := rows.Scan(&c.Group, &c.Hosts); err != nil {
			return nil, wrap("group host counts", err)
		}
		out = append(out, c)
	}
	return out, wrap("group host counts", rows.Err())
}

// CreateUsers implements store.Ops.
func (o ops) CreateUsers(ctx context.Context, users []store.User) error {
	for i, u := range users {
		if err := store.ValidateUserName(u.Name); err != nil {
			return fmt.Errorf("users[%d]: %w", i, err)
		}
	}
	if len(users) == 0 {
		return nil
	}
	var ids []int64
	err := o.batches(ctx, len(users), 1, func(o ops, lo, hi int) error {
		got, err := o.insert(ctx, "users", []string{"name"}, hi-lo,
			func(i int, args []any) []any { return append(args, users[lo+i].Name) })
		ids = append(ids, got...)
		return err
	})
	if err != nil {
		return wrap("create users", err)
	}
	for i := range users {
		users[i].ID = ids[i]
	}
	return nil
}

// UsersNamed implements store.Ops.
func (o ops) UsersNamed(ctx context.Context, name string) ([]store.User, error) {
	rows, err := o.q.QueryContext(ctx, o.d.usersNamed, name)
	if err != nil {
		return nil, wrap("users named", err)
	}
	defer rows.Close()
	out := []store.User{}
	for rows.Next() {
		var u store.User
		if err := rows.Scan(&u.ID, &u.Name); err != nil {
			return nil, wrap("users named", err)
		}
		out = append(out, u)
	}
	return out, wrap("users named", rows.Err())
}

// CreateParent implements store.Ops: the parent, then its children in bulk,
// in one transaction.
func (o ops) CreateParent(ctx context.Context, p *store.Parent) error {
	if err := store.ValidateParent(*p); err != nil {
		return err
	}
	var pid int64
	var cids []int64
	err := o.atomic(ctx, func(o ops) error {
		ids, err := o.insert(ctx, "parent", []string{"name"}, 1,
			func(_ int, args []any) []any { return append(args, p.Name) })
		if err != nil {
			return err
		}
		pid = ids[0]
		return o.batches(ctx, len(p.Children), 2, func(o ops, lo, hi int) error {
			got, err := o.insert(ctx, "child", []string{"parent_id", "name"}, hi-lo,
				func(i int, args []any) []any { return append(args, pid, p.Children[lo+i].Name) })
			cids = append(cids, got...)
			return err
		})
	})
	if err != nil {
		return wrap("create parent", err)
	}
	p.ID = pid
	for i := range p.Children {
		p.Children[i].ID, p.Children[i].ParentID = cids[i], pid
	}
	return nil
}

// ParentsWithChildren implements store.Ops in one statement: parents LEFT
// JOIN children, ordered so that each parent's rows are adjacent.
func (o ops) ParentsWithChildren(ctx context.Context) ([]store.Parent, error) {
	rows, err := o.q.QueryContext(ctx, `SELECT p.id, p.name, c.id, c.name
FROM parent p LEFT JOIN child c ON c.parent_id = p.id
ORDER BY p.id, c.id`)
	if err != nil {
		return nil, wrap("parents with children", err)
	}
	defer rows.Close()
	out := []store.Parent{}
	for rows.Next() {
		var pid int64
		var pname string
		var cid sql.NullInt64
		var cname sql.NullString
		if err := rows.Scan(&pid, &pname, &cid, &cname); err != nil {
			return nil, wrap("parents with children", err)
		}
		if len(out) == 0 || out[len(out)-1].ID != pid {
			out = append(out, store.Parent{ID: pid, Name: pname, Children: []store.Child{}})
		}
		if cid.Valid {
			last := &out[len(out)-1]
			last.Children = append(last.Children, store.Child{ID: cid.Int64, ParentID: pid, Name: cname.String})
		}
	}
	return out, wrap("parents with children", rows.Err())
}

// hosts runs a query selecting hostColumns.
func (o ops) hosts(ctx context.Context, query string, args ...any) ([]store.Host, error) {
	rows, err := o.q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []store.Host{}
	for rows.Next() {
		var h store.Host
		if err := rows.Scan(&h.ID, &h.Hostname, &h.IPAddr, &h.Port); err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

// exec runs a statement and returns the rows it affected.
func (o ops) exec(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := o.q.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// batches calls fn for consecutive ranges [lo, hi) of n rows of cols
// values each, small enough for one statement; more than one range runs in
// a transaction so that the whole is all or nothing.
func (o ops) batches(ctx context.Context, n, cols int, fn func(o ops, lo, hi int) error) error {
	size := o.d.batchRows(cols)
	run := func(o ops) error {
		for lo := 0; lo < n; lo += size {
			if err := fn(o, lo, min(lo+size, n)); err != nil {
				return err
			}
		}
		return nil
	}
	if n <= size {
		return run(o)
	}
	return o.atomic(ctx, run)
}

// insert inserts n rows into table in one statement, appending the values
// of row i with row(i, args), and returns their ids in row order.
func (o ops) insert(ctx context.Context, table string, cols []string, n int, row func(i int, args []any) []any) ([]int64, error) {
	var b strings.Builder
	b.WriteString("INSERT INTO " + table + " (" + strings.Join(cols, ", ") + ") VALUES ")
	args := make([]any, 0, n*len(cols))
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for j := range cols {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString(o.d.ph(len(args) + j + 1))
		}
		b.WriteByte(')')
		args = row(i, args)
	}
	ids := make([]int64, 0, n)
	if !o.d.returning {
		// MySQL: the first id of the statement; the others follow it
		// (see the package comment).
		res, err := o.q.ExecContext(ctx, b.String(), args...)
		if err != nil {
			return nil, err
		}
		first, err := res.LastInsertId()
		if err != nil {
			return nil, err
		}
		for i := range n {
			ids = append(ids, first+int64(i))
		}
		return ids, nil
	}
	b.WriteString(" RETURNING id")
	rows, err := o.q.QueryContext(ctx, b.String(), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
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
		return nil, fmt.Errorf("insert into %s returned %d ids for %d rows", table, len(ids), n)
	}
	slices.Sort(ids) // RETURNING has no order; ids grow in VALUES order
	return ids, nil
}
