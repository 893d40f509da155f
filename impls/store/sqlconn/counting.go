package sqlconn

import (
	"context"
	"database/sql/driver"
	"errors"
	"io"
	"sync/atomic"
)

// The statement-counting wrapper.
//
// Every back-end's *sql.DB is opened through countingConnector, so that the
// suites can count the statements the driver executed whatever the layer on
// top (GORM, sqlx, hand SQL): that is how "no N+1" is proved. One statement is
// one Exec or Query reaching the driver, on the connection or on a prepared
// statement. Prepare, Begin, Commit, Rollback, Ping, ResetSession and IsValid
// are not statements (a driver may send BEGIN over the wire, but that is
// transaction control, the same for every layer).
//
// The wrapper must be invisible otherwise. database/sql decides what to do
// by probing a driver.Conn for optional interfaces, so conn implements all of
// them and, for each, does exactly what database/sql does when the wrapped
// connection lacks it:
//
//	interface           wrapped conn lacks it -> conn answers
//	ExecerContext       Execer if present, else driver.ErrSkip (database/sql prepares)
//	QueryerContext      Queryer if present, else driver.ErrSkip
//	ConnPrepareContext  Prepare
//	ConnBeginTx         Begin for default options, else an error (as database/sql)
//	NamedValueChecker   driver.ErrSkip (database/sql's default conversion)
//	SessionResetter     nil
//	Validator           true
//	Pinger              nil
//
// Errors are returned as the driver made them, never wrapped, so callers can
// errors.As them to *pgconn.PgError, *mysql.MySQLError or sqlite3.Error, and
// driver.ErrBadConn keeps its meaning for the pool. Rows and Tx are the
// driver's own (their optional interfaces need no forwarding).

// countingConnector wraps a driver.Connector; every connection it makes adds
// its statements to n.
type countingConnector struct {
	inner driver.Connector
	n     *atomic.Int64
}

func (c *countingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	dc, err := c.inner.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &conn{Conn: dc, n: c.n}, nil
}

func (c *countingConnector) Driver() driver.Driver {
	return &countingDriver{inner: c.inner.Driver(), n: c.n}
}

// Close closes the wrapped connector if it holds resources (sql.DB.Close
// calls it, Go 1.17+).
func (c *countingConnector) Close() error {
	if cl, ok := c.inner.(io.Closer); ok {
		return cl.Close()
	}
	return nil
}

// countingDriver is what sql.DB.Driver() returns: opening through it counts
// too, so a caller that reopens by name gets the same behaviour.
type countingDriver struct {
	inner driver.Driver
	n     *atomic.Int64
}

func (d *countingDriver) Open(name string) (driver.Conn, error) {
	dc, err := d.inner.Open(name)
	if err != nil {
		return nil, err
	}
	return &conn{Conn: dc, n: d.n}, nil
}

// conn counts Exec and Query on one driver connection. Like every
// driver.Conn it is used by one goroutine at a time (database/sql
// serialises); only the counter is shared.
type conn struct {
	driver.Conn
	n *atomic.Int64
}

var (
	_ driver.ExecerContext      = (*conn)(nil)
	_ driver.QueryerContext     = (*conn)(nil)
	_ driver.ConnPrepareContext = (*conn)(nil)
	_ driver.ConnBeginTx        = (*conn)(nil)
	_ driver.NamedValueChecker  = (*conn)(nil)
	_ driver.SessionResetter    = (*conn)(nil)
	_ driver.Validator          = (*conn)(nil)
	_ driver.Pinger             = (*conn)(nil)
)

// Unwrap returns the driver's own connection, for code that reaches it
// through sql.Conn.Raw (for example to get the *pgx.Conn of a
// *stdlib.Conn): Raw hands out the wrapper, so call Unwrap first.
func (c *conn) Unwrap() driver.Conn { return c.Conn }

func (c *conn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	var (
		res driver.Result
		err error
	)
	switch ex := c.Conn.(type) {
	case driver.ExecerContext:
		res, err = ex.ExecContext(ctx, query, args)
	case driver.Execer: //nolint:staticcheck // forwarding the legacy interface is the point
		var vals []driver.Value
		if vals, err = namedToValues(args); err != nil {
			return nil, err
		}
		if err = ctx.Err(); err != nil {
			return nil, err
		}
		res, err = ex.Exec(query, vals)
	default:
		return nil, driver.ErrSkip
	}
	if err != driver.ErrSkip { //nolint:errorlint // ErrSkip is compared by identity, as database/sql does
		c.n.Add(1)
	}
	return res, err
}

func (c *conn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	var (
		rows driver.Rows
		err  error
	)
	switch q := c.Conn.(type) {
	case driver.QueryerContext:
		rows, err = q.QueryContext(ctx, query, args)
	case driver.Queryer: //nolint:staticcheck // forwarding the legacy interface is the point
		var vals []driver.Value
		if vals, err = namedToValues(args); err != nil {
			return nil, err
		}
		if err = ctx.Err(); err != nil {
			return nil, err
		}
		rows, err = q.Query(query, vals)
	default:
		return nil, driver.ErrSkip
	}
	if err != driver.ErrSkip { //nolint:errorlint // identity, as database/sql
		c.n.Add(1)
	}
	return rows, err
}

func (c *conn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	var (
		si  driver.Stmt
		err error
	)
	if p, ok := c.Conn.(driver.ConnPrepareContext); ok {
		si, err = p.PrepareContext(ctx, query)
	} else {
		if err = ctx.Err(); err != nil {
			return nil, err
		}
		si, err = c.Conn.Prepare(query)
	}
	if err != nil {
		return nil, err
	}
	s := &stmt{Stmt: si, conn: c}
	if cc, ok := si.(driver.ColumnConverter); ok { //nolint:staticcheck // forwarded for drivers that still use it
		return &stmtCC{stmt: s, cc: cc}, nil
	}
	return s, nil
}

// Prepare is driver.Conn's: route it through PrepareContext so that the
// statement is wrapped whichever entry point database/sql uses.
func (c *conn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

// errIsolation is database/sql's answer when a driver without ConnBeginTx
// is asked for non-default transaction options.
var errIsolation = errors.New("sql: driver does not support non-default isolation level or read-only transactions")

func (c *conn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if b, ok := c.Conn.(driver.ConnBeginTx); ok {
		return b.BeginTx(ctx, opts)
	}
	if opts.Isolation != 0 || opts.ReadOnly {
		return nil, errIsolation
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return c.Conn.Begin() //nolint:staticcheck // the fallback database/sql uses
}

func (c *conn) CheckNamedValue(nv *driver.NamedValue) error {
	if ch, ok := c.Conn.(driver.NamedValueChecker); ok {
		return ch.CheckNamedValue(nv)
	}
	return driver.ErrSkip
}

func (c *conn) ResetSession(ctx context.Context) error {
	if r, ok := c.Conn.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

func (c *conn) IsValid() bool {
	if v, ok := c.Conn.(driver.Validator); ok {
		return v.IsValid()
	}
	return true
}

func (c *conn) Ping(ctx context.Context) error {
	if p, ok := c.Conn.(driver.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

// stmt counts executions of a prepared statement.
type stmt struct {
	driver.Stmt
	conn *conn
}

var (
	_ driver.StmtExecContext   = (*stmt)(nil)
	_ driver.StmtQueryContext  = (*stmt)(nil)
	_ driver.NamedValueChecker = (*stmt)(nil)
)

func (s *stmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	defer s.conn.n.Add(1)
	if ex, ok := s.Stmt.(driver.StmtExecContext); ok {
		return ex.ExecContext(ctx, args)
	}
	vals, err := namedToValues(args)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return s.Stmt.Exec(vals) //nolint:staticcheck // the fallback database/sql uses
}

func (s *stmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	defer s.conn.n.Add(1)
	if q, ok := s.Stmt.(driver.StmtQueryContext); ok {
		return q.QueryContext(ctx, args)
	}
	vals, err := namedToValues(args)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return s.Stmt.Query(vals) //nolint:staticcheck // the fallback database/sql uses
}

// Exec and Query are driver.Stmt's legacy entry points; database/sql only
// uses them when the context versions are missing, which they are not here,
// but a caller holding the driver.Stmt might.
func (s *stmt) Exec(args []driver.Value) (driver.Result, error) {
	return s.ExecContext(context.Background(), valuesToNamed(args))
}

func (s *stmt) Query(args []driver.Value) (driver.Rows, error) {
	return s.QueryContext(context.Background(), valuesToNamed(args))
}

// CheckNamedValue reproduces database/sql's order: the statement's checker,
// else the connection's, else the default conversion (ErrSkip).
func (s *stmt) CheckNamedValue(nv *driver.NamedValue) error {
	if ch, ok := s.Stmt.(driver.NamedValueChecker); ok {
		return ch.CheckNamedValue(nv)
	}
	return s.conn.CheckNamedValue(nv)
}

// stmtCC is a stmt whose driver statement also converts columns; a separate
// type because database/sql treats the presence of ColumnConverter as a
// promise.
type stmtCC struct {
	*stmt
	cc driver.ColumnConverter //nolint:staticcheck // forwarded as is
}

func (s *stmtCC) ColumnConverter(idx int) driver.ValueConverter { return s.cc.ColumnConverter(idx) }

// namedToValues is database/sql's conversion for legacy drivers: named
// parameters cannot be expressed, so they are an error.
func namedToValues(named []driver.NamedValue) ([]driver.Value, error) {
	vals := make([]driver.Value, len(named))
	for i, nv := range named {
		if nv.Name != "" {
			return nil, errors.New("sql: driver does not support the use of Named Parameters")
		}
		vals[i] = nv.Value
	}
	return vals, nil
}

func valuesToNamed(vals []driver.Value) []driver.NamedValue {
	named := make([]driver.NamedValue, len(vals))
	for i, v := range vals {
		named[i] = driver.NamedValue{Ordinal: i + 1, Value: v}
	}
	return named
}
