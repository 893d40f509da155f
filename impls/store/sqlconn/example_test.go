package sqlconn_test

import (
	"context"
	"fmt"

	"github.com/twistbench/twistbench/impls/store/sqlconn"
)

// Redact is what to print whenever a DSN is shown: the password never is.
func ExampleRedact() {
	fmt.Println(sqlconn.Redact("postgres://app:s3cret@db.internal:5432/inventory?sslmode=disable"))
	fmt.Println(sqlconn.Redact("mysql://root:p%40ss@127.0.0.1:3306/inventory"))
	fmt.Println(sqlconn.Redact("sqlite:///var/lib/twistbench/inventory.db"))
	// Output:
	// postgres://app:xxxxx@db.internal:5432/inventory?sslmode=disable
	// mysql://root:xxxxx@127.0.0.1:3306/inventory
	// sqlite:///var/lib/twistbench/inventory.db
}

// Open gives the pool, the dialect and a statement counter that the
// conformance suite reads to prove that a preload is not N+1.
func ExampleOpen() {
	ctx := context.Background()
	db, err := sqlconn.Open(ctx, "sqlite::memory:")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.SQL.Close()
	db.SQL.ExecContext(ctx, `CREATE TABLE hosts (id INTEGER PRIMARY KEY, hostname TEXT)`)
	db.SQL.ExecContext(ctx, `INSERT INTO hosts (hostname) VALUES ('a'), ('b')`)
	var n int
	db.SQL.QueryRowContext(ctx, `SELECT count(*) FROM hosts`).Scan(&n)
	fmt.Println(db.Dialect, n, "hosts,", db.Statements.Load(), "statements")
	// Output: sqlite 2 hosts, 3 statements
}

// A bad DSN is one error that says what is wrong, without the password.
func ExampleDialectOf() {
	_, err := sqlconn.DialectOf("postgres://app:s3cret@db.internal:5432")
	fmt.Println(err)
	// Output: sqlconn: bad DSN postgres://app:xxxxx@db.internal:5432: missing database name (the path after the host, /database)
}
