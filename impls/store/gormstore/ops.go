package gormstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"
	sqlite3 "github.com/mattn/go-sqlite3"
	"gorm.io/gorm"

	"github.com/twistbench/twistbench/impls/store"
)

// ops implements store.Ops over a *gorm.DB: the Store's root session, or
// the transaction WithTx runs.
type ops struct {
	g       *gorm.DB
	dialect store.Dialect
	inTx    bool
}

var _ store.Ops = ops{}

// atomic runs fn in a transaction (a savepoint when o is already one), so
// that a call made of several statements writes all or nothing in tuned
// mode too.
func (o ops) atomic(ctx context.Context, fn func(tx *gorm.DB) error) error {
	return o.g.WithContext(ctx).Transaction(fn)
}

// CreateHost implements store.Ops.
func (o ops) CreateHost(ctx context.Context, h *store.Host) error {
	if err := store.ValidateHost(*h); err != nil {
		return err
	}
	n := store.NormalizeHost(*h)
	row := hostRow{Hostname: n.Hostname, IPAddr: n.IPAddr, Port: n.Port}
	if err := o.g.WithContext(ctx).Create(&row).Error; err != nil {
		return mapErr("create host", err)
	}
	n.ID = int64(row.ID)
	*h = n
	return nil
}

// CreateHosts implements store.Ops with CreateInBatches, in a transaction
// of its own when it takes more than one batch.
func (o ops) CreateHosts(ctx context.Context, hosts []store.Host) error {
	rows := make([]hostRow, len(hosts))
	for i, h := range hosts {
		if err := store.ValidateHost(h); err != nil {
			return fmt.Errorf("hosts[%d]: %w", i, err)
		}
		n := store.NormalizeHost(h)
		rows[i] = hostRow{Hostname: n.Hostname, IPAddr: n.IPAddr, Port: n.Port}
	}
	if len(rows) == 0 {
		return nil
	}
	insert := func(tx *gorm.DB) error {
		if err := tx.CreateInBatches(&rows, batchSize).Error; err != nil {
			return err
		}
		if o.dialect == store.MySQL {
			return o.rereadIDs(tx, rows)
		}
		return nil
	}
	var err error
	if len(rows) <= batchSize && o.dialect != store.MySQL {
		err = insert(o.g.WithContext(ctx)) // one statement: atomic by itself
	} else {
		err = o.atomic(ctx, insert)
	}
	if err != nil {
		return mapErr("create hosts", err)
	}
	for i := range hosts {
		hosts[i] = rows[i].host()
	}
	return nil
}

// rereadIDs replaces the IDs GORM derived on MySQL, which has no RETURNING:
// GORM takes LastInsertId (the first row's id) and counts up by one. That
// holds only if the server gave the statement consecutive values in steps
// of auto_increment_increment = 1: the manual's gap rules name only "bulk
// inserts" (INSERT ... SELECT), yet it also says that in MySQL 8's default
// interleaved lock mode the values of one statement "may not be
// consecutive", and a Galera or multi-primary server steps by more than 1.
// Reading the ids back by hostname, in the same transaction, is exact in
// every case, for one IN query per batch.
func (o ops) rereadIDs(tx *gorm.DB, rows []hostRow) error {
	for start := 0; start < len(rows); start += batchSize {
		end := min(start+batchSize, len(rows))
		names := make([]string, 0, end-start)
		for _, r := range rows[start:end] {
			names = append(names, r.Hostname)
		}
		var got []hostRow
		if err := tx.Select("id", "hostname").Where("hostname IN ?", names).Find(&got).Error; err != nil {
			return err
		}
		ids := make(map[string]serial, len(got))
		for _, g := range got {
			ids[g.Hostname] = g.ID
		}
		for i := start; i < end; i++ {
			id, ok := ids[rows[i].Hostname]
			if !ok {
				return fmt.Errorf("gormstore: host %q inserted but not found again", rows[i].Hostname)
			}
			rows[i].ID = id
		}
	}
	return nil
}

// HostByName implements store.Ops.
func (o ops) HostByName(ctx context.Context, hostname string) (store.Host, error) {
	var row hostRow
	if err := o.g.WithContext(ctx).Where("hostname = ?", hostname).Take(&row).Error; err != nil {
		return store.Host{}, mapErr(fmt.Sprintf("host %q", hostname), err)
	}
	return row.host(), nil
}

// HostsByNames implements store.Ops; an empty list runs no SQL.
func (o ops) HostsByNames(ctx context.Context, names []string) ([]store.Host, error) {
	if len(names) == 0 {
		return []store.Host{}, nil
	}
	var rows []hostRow
	if err := o.g.WithContext(ctx).Where("hostname IN ?", names).Order("hostname").Find(&rows).Error; err != nil {
		return nil, mapErr("hosts by names", err)
	}
	return hosts(rows), nil
}

// HostsPage implements store.Ops.
func (o ops) HostsPage(ctx context.Context, offset, limit int) ([]store.Host, error) {
	switch {
	case offset < 0:
		return nil, store.Invalid("offset", "%d is negative", offset)
	case limit < 0:
		return nil, store.Invalid("limit", "%d is negative", limit)
	case limit == 0:
		return []store.Host{}, nil
	}
	var rows []hostRow
	if err := o.g.WithContext(ctx).Order("id").Offset(offset).Limit(limit).Find(&rows).Error; err != nil {
		return nil, mapErr("hosts page", err)
	}
	return hosts(rows), nil
}

// HostLabels implements store.Ops: Select with aliases, scanned into the
// contract's struct by column name.
func (o ops) HostLabels(ctx context.Context) ([]store.HostLabel, error) {
	labels := []store.HostLabel{}
	if err := o.g.WithContext(ctx).Model(&hostRow{}).Select("hostname AS name, ip_addr AS addr").Order("id").Scan(&labels).Error; err != nil {
		return nil, mapErr("host labels", err)
	}
	return labels, nil
}

// where applies a HostFilter: fields ANDed, values of a field in an IN list.
func where(g *gorm.DB, f store.HostFilter) *gorm.DB {
	if len(f.Hostnames) > 0 {
		g = g.Where("hostname IN ?", f.Hostnames)
	}
	if len(f.Ports) > 0 {
		g = g.Where("port IN ?", f.Ports)
	}
	return g
}

// UpdateHostPort implements store.Ops. RowsAffected is rows matched on
// MySQL only because package sqlconn opens it with clientFoundRows=true;
// the other dialects always count matched rows.
func (o ops) UpdateHostPort(ctx context.Context, f store.HostFilter, port int) (int64, error) {
	if err := store.ValidateFilter(f); err != nil {
		return 0, err
	}
	if err := store.ValidatePort(port); err != nil {
		return 0, err
	}
	res := where(o.g.WithContext(ctx).Model(&hostRow{}), f).Update("port", port)
	if res.Error != nil {
		return 0, mapErr("update hosts", res.Error)
	}
	return res.RowsAffected, nil
}

// DeleteHosts implements store.Ops; memberships go by ON DELETE CASCADE.
func (o ops) DeleteHosts(ctx context.Context, f store.HostFilter) (int64, error) {
	if err := store.ValidateFilter(f); err != nil {
		return 0, err
	}
	res := where(o.g.WithContext(ctx), f).Delete(&hostRow{})
	if res.Error != nil {
		return 0, mapErr("delete hosts", res.Error)
	}
	return res.RowsAffected, nil
}

// CreateGroup implements store.Ops.
func (o ops) CreateGroup(ctx context.Context, g *store.HostGroup) error {
	if err := store.ValidateGroupName(g.Name); err != nil {
		return err
	}
	row := groupRow{Name: g.Name}
	if err := o.g.WithContext(ctx).Create(&row).Error; err != nil {
		return mapErr("create group", err)
	}
	g.ID = int64(row.ID)
	return nil
}

// DeleteGroup implements store.Ops; memberships go by ON DELETE CASCADE.
func (o ops) DeleteGroup(ctx context.Context, name string) error {
	res := o.g.WithContext(ctx).Where("name = ?", name).Delete(&groupRow{})
	if res.Error != nil {
		return mapErr("delete group", res.Error)
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("gormstore: group %q: %w", name, store.ErrNotFound)
	}
	return nil
}

// AddHostToGroup implements store.Ops: look both up (to say which is
// missing), then insert the membership row. A host or group deleted in
// between shows up as a foreign-key violation, mapped to ErrNotFound too.
func (o ops) AddHostToGroup(ctx context.Context, hostname, group string) error {
	g := o.g.WithContext(ctx)
	var h hostRow
	if err := g.Select("id").Where("hostname = ?", hostname).Take(&h).Error; err != nil {
		return mapErr(fmt.Sprintf("host %q", hostname), err)
	}
	var gr groupRow
	if err := g.Select("id").Where("name = ?", group).Take(&gr).Error; err != nil {
		return mapErr(fmt.Sprintf("group %q", group), err)
	}
	m := memberRow{HostID: ref(h.ID), GroupID: ref(gr.ID)}
	if err := g.Omit("Host", "Group").Create(&m).Error; err != nil {
		return mapErr(fmt.Sprintf("add %q to %q", hostname, group), err)
	}
	return nil
}

// HostsInGroup implements store.Ops: the group by name (ErrNotFound when
// absent, so that an empty group is told apart), then one join.
func (o ops) HostsInGroup(ctx context.Context, group string) ([]store.Host, error) {
	g := o.g.WithContext(ctx)
	var gr groupRow
	if err := g.Select("id").Where("name = ?", group).Take(&gr).Error; err != nil {
		return nil, mapErr(fmt.Sprintf("group %q", group), err)
	}
	var rows []hostRow
	err := g.Joins("JOIN host_group_members ON host_group_members.host_id = hosts.id").
		Where("host_group_members.group_id = ?", gr.ID).
		Order("hosts.hostname").
		Find(&rows).Error
	if err != nil {
		return nil, mapErr("hosts in group", err)
	}
	return hosts(rows), nil
}

// GroupHostCounts implements store.Ops: LEFT JOIN + GROUP BY, so that a
// group without members counts 0 (COUNT of a column is 0 over NULLs).
func (o ops) GroupHostCounts(ctx context.Context) ([]store.GroupCount, error) {
	var rows []struct {
		Name  string
		Hosts int64
	}
	err := o.g.WithContext(ctx).Model(&groupRow{}).
		Select("host_groups.name AS name, COUNT(host_group_members.host_id) AS hosts").
		Joins("LEFT JOIN host_group_members ON host_group_members.group_id = host_groups.id").
		Group("host_groups.id, host_groups.name").
		Order("host_groups.name").
		Scan(&rows).Error
	if err != nil {
		return nil, mapErr("group counts", err)
	}
	out := make([]store.GroupCount, len(rows))
	for i, r := range rows {
		out[i] = store.GroupCount{Group: r.Name, Hosts: r.Hosts}
	}
	return out, nil
}

// CreateUsers implements store.Ops with CreateInBatches.
func (o ops) CreateUsers(ctx context.Context, users []store.User) error {
	rows := make([]userRow, len(users))
	for i, u := range users {
		if err := store.ValidateUserName(u.Name); err != nil {
			return fmt.Errorf("users[%d]: %w", i, err)
		}
		rows[i] = userRow{Name: u.Name}
	}
	if len(rows) == 0 {
		return nil
	}
	insert := func(tx *gorm.DB) error { return tx.CreateInBatches(&rows, batchSize).Error }
	var err error
	if len(rows) <= batchSize {
		err = insert(o.g.WithContext(ctx))
	} else {
		err = o.atomic(ctx, insert)
	}
	if err != nil {
		return mapErr("create users", err)
	}
	for i := range users {
		users[i] = store.User{ID: int64(rows[i].ID), Name: rows[i].Name}
	}
	return nil
}

// UsersNamed implements store.Ops.
func (o ops) UsersNamed(ctx context.Context, name string) ([]store.User, error) {
	var rows []userRow
	if err := o.g.WithContext(ctx).Where("name = ?", name).Order("id").Find(&rows).Error; err != nil {
		return nil, mapErr("users named", err)
	}
	out := make([]store.User, len(rows))
	for i, r := range rows {
		out[i] = store.User{ID: int64(r.ID), Name: r.Name}
	}
	return out, nil
}

// CreateParent implements store.Ops: GORM inserts the parent, then its
// children (the has-many association) in one bulk insert; atomic() makes
// the pair all or nothing in tuned mode.
func (o ops) CreateParent(ctx context.Context, p *store.Parent) error {
	if err := store.ValidateParent(*p); err != nil {
		return err
	}
	row := parentRow{Name: p.Name, Children: make([]childRow, len(p.Children))}
	for i, c := range p.Children {
		row.Children[i] = childRow{Name: c.Name}
	}
	create := func(tx *gorm.DB) error { return tx.Create(&row).Error }
	var err error
	if len(row.Children) == 0 {
		err = create(o.g.WithContext(ctx))
	} else {
		err = o.atomic(ctx, create)
	}
	if err != nil {
		return mapErr("create parent", err)
	}
	p.ID = int64(row.ID)
	for i := range p.Children {
		p.Children[i].ID = int64(row.Children[i].ID)
		p.Children[i].ParentID = int64(row.Children[i].ParentID)
	}
	return nil
}

// ParentsWithChildren implements store.Ops with Preload: one query for the
// parents, one IN query for all their children.
func (o ops) ParentsWithChildren(ctx context.Context) ([]store.Parent, error) {
	var rows []parentRow
	err := o.g.WithContext(ctx).
		Preload("Children", func(db *gorm.DB) *gorm.DB { return db.Order("child.id") }).
		Order("parent.id").
		Find(&rows).Error
	if err != nil {
		return nil, mapErr("parents with children", err)
	}
	out := make([]store.Parent, len(rows))
	for i, r := range rows {
		p := store.Parent{ID: int64(r.ID), Name: r.Name, Children: make([]store.Child, len(r.Children))}
		for j, c := range r.Children {
			p.Children[j] = store.Child{ID: int64(c.ID), ParentID: int64(c.ParentID), Name: c.Name}
		}
		out[i] = p
	}
	return out, nil
}

func hosts(rows []hostRow) []store.Host {
	out := make([]store.Host, len(rows))
	for i, r := range rows {
		out[i] = r.host()
	}
	return out
}

// mapErr maps GORM's and the drivers' errors to the contract's sentinels,
// keeping the original in the chain for the message.
func mapErr(what string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, gorm.ErrRecordNotFound):
		return fmt.Errorf("gormstore: %s: %w", what, store.ErrNotFound)
	case isDuplicate(err):
		return fmt.Errorf("gormstore: %s: %w: %w", what, store.ErrDuplicate, err)
	case isForeignKey(err):
		return fmt.Errorf("gormstore: %s: %w: %w", what, store.ErrNotFound, err)
	}
	return fmt.Errorf("gormstore: %s: %w", what, err)
}

// isDuplicate reports a unique or primary-key violation on any dialect.
func isDuplicate(err error) bool {
	var pg *pgconn.PgError
	var my *mysql.MySQLError
	var lite sqlite3.Error
	switch {
	case errors.Is(err, gorm.ErrDuplicatedKey):
		return true
	case errors.As(err, &pg):
		return pg.Code == "23505" // unique_violation
	case errors.As(err, &my):
		return my.Number == 1062 // ER_DUP_ENTRY
	case errors.As(err, &lite):
		return lite.ExtendedCode == sqlite3.ErrConstraintUnique || lite.ExtendedCode == sqlite3.ErrConstraintPrimaryKey
	}
	return false
}

// isForeignKey reports a foreign-key violation on any dialect: a row that
// should exist does not.
func isForeignKey(err error) bool {
	var pg *pgconn.PgError
	var my *mysql.MySQLError
	var lite sqlite3.Error
	switch {
	case errors.Is(err, gorm.ErrForeignKeyViolated):
		return true
	case errors.As(err, &pg):
		return pg.Code == "23503" // foreign_key_violation
	case errors.As(err, &my):
		return my.Number == 1452 // ER_NO_REFERENCED_ROW_2
	case errors.As(err, &lite):
		return lite.ExtendedCode == sqlite3.ErrConstraintForeignKey
	}
	return false
}
