package sqlstore

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/twistbench/twistbench/impls/store"
)

// dialect is what differs between the databases for this back-end:
// placeholders, RETURNING, the parameter limit, and the statements that
// are fixed, rendered once at Open.
type dialect struct {
	name      store.Dialect
	dollar    bool // $1, $2 placeholders (PostgreSQL) instead of ?
	returning bool // INSERT ... RETURNING (PostgreSQL, SQLite 3.35+)
	// maxParams is the most bind parameters one statement may carry:
	// 65535 for PostgreSQL's wire protocol and MySQL's prepared statements,
	// 32766 for SQLite (SQLITE_MAX_VARIABLE_NUMBER since 3.32).
	maxParams int

	hostByName, hostsPage, deleteGroup, addMember, memberExists, hostsInGroup, usersNamed string
}

// maxBatchRows caps the rows of one INSERT below the parameter limit: a
// statement of thousands of rows costs more to parse than it saves in
// round trips.
const maxBatchRows = 1000

func dialectOf(name store.Dialect) (*dialect, error) {
	d := &dialect{name: name}
	switch name {
	case store.Postgres:
		d.dollar, d.returning, d.maxParams = true, true, 65535
	case store.MySQL:
		d.maxParams = 65535
	case store.SQLite:
		d.returning, d.maxParams = true, 32766
	default:
		return nil, fmt.Errorf("sqlstore: unknown dialect %q", name)
	}
	d.hostByName = d.rebind("SELECT " + hostColumns + " FROM hosts WHERE hostname = ?")
	d.hostsPage = d.rebind("SELECT " + hostColumns + " FROM hosts ORDER BY id LIMIT ? OFFSET ?")
	d.deleteGroup = d.rebind("DELETE FROM host_groups WHERE name = ?")
	d.addMember = d.rebind(`INSERT INTO host_group_members (host_id, group_id)
SELECT h.id, g.id FROM hosts h, host_groups g WHERE h.hostname = ? AND g.name = ?`)
	d.memberExists = d.rebind(`SELECT (SELECT COUNT(*) FROM hosts WHERE hostname = ?), (SELECT COUNT(*) FROM host_groups WHERE name = ?)`)
	d.hostsInGroup = d.rebind(`SELECT h.id, h.hostname, h.ip_addr, h.port
FROM host_groups g
LEFT JOIN host_group_members m ON m.group_id = g.id
LEFT JOIN hosts h ON h.id = m.host_id
WHERE g.name = ?
ORDER BY h.hostname`)
	d.usersNamed = d.rebind("SELECT id, name FROM users WHERE name = ? ORDER BY id")
	return d, nil
}

// ph is the placeholder of the n-th (1-based) parameter.
func (d *dialect) ph(n int) string {
	if d.dollar {
		return "$" + strconv.Itoa(n)
	}
	return "?"
}

// rebind turns the ? of a fixed statement into the dialect's placeholders.
// The statements of this package have no ? inside literals.
func (d *dialect) rebind(q string) string {
	if !d.dollar {
		return q
	}
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			b.WriteString(d.ph(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// batchRows is how many rows of cols values fit in one INSERT.
func (d *dialect) batchRows(cols int) int { return min(maxBatchRows, d.maxParams/cols) }

// checkParams rejects, before any SQL, an IN list the database would
// refuse for its number of parameters.
func (d *dialect) checkParams(field string, n int) error {
	if n > d.maxParams {
		return store.Invalid(field, "%d values, more than the %d parameters one %s statement takes", n, d.maxParams, d.name)
	}
	return nil
}

// in writes "(p, p, ...)" for values after the parameters already in args
// and returns args with the values appended.
func in[T any](d *dialect, b *strings.Builder, args []any, values []T) []any {
	b.WriteByte('(')
	for i, v := range values {
		if i > 0 {
			b.WriteString(", ")
		}
		args = append(args, v)
		b.WriteString(d.ph(len(args)))
	}
	b.WriteByte(')')
	return args
}

// where writes the WHERE clause of a HostFilter (fields ANDed, values of a
// field in an IN list) after the parameters already in args.
func (d *dialect) where(b *strings.Builder, args []any, f store.HostFilter) []any {
	sep := " WHERE "
	if len(f.Hostnames) > 0 {
		b.WriteString(sep + "hostname IN ")
		args = in(d, b, args, f.Hostnames)
		sep = " AND "
	}
	if len(f.Ports) > 0 {
		b.WriteString(sep + "port IN ")
		args = in(d, b, args, f.Ports)
	}
	return args
}
