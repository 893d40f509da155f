package schema_test

import (
	"context"
	"fmt"
	"log"

	"github.com/twistbench/twistbench/impls/store/schema"
	"github.com/twistbench/twistbench/impls/store/sqlconn"
)

// Describe shows what a database really holds, whoever created the tables:
// here the hosts table that Create made on SQLite.
func ExampleDescribe() {
	ctx := context.Background()
	db, err := sqlconn.Open(ctx, "sqlite::memory:")
	if err != nil {
		log.Fatal(err)
	}
	defer db.SQL.Close()
	if err := schema.Create(ctx, db); err != nil {
		log.Fatal(err)
	}
	c, err := schema.Describe(ctx, db)
	if err != nil {
		log.Fatal(err)
	}
	hosts, _ := c.Table("hosts")
	for _, col := range hosts.Columns {
		fmt.Printf("%-8s %-12s nullable=%-5v default=%q auto=%v\n", col.Name, col.Type, col.Nullable, col.Default, col.Auto)
	}
	fmt.Println("primary key:", hosts.PrimaryKey, "unique:", hosts.Unique)
	// Output:
	// id       integer      nullable=false default="" auto=true
	// hostname varchar(64)  nullable=false default="" auto=false
	// ip_addr  varchar(128) nullable=false default="" auto=false
	// port     integer      nullable=false default="22" auto=false
	// primary key: [id] unique: [[hostname] [ip_addr]]
}
