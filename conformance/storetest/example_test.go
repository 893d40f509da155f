package storetest_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/twistbench/twistbench/conformance"
	"github.com/twistbench/twistbench/conformance/storetest"
	"github.com/twistbench/twistbench/impls/store/gormstore"
	"github.com/twistbench/twistbench/impls/store/sqlconn"
)

// Outside go test (the harness), Record runs every case against one
// back-end on one database and returns a verdict per case.
func ExampleRecord() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "storetest-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	db, err := sqlconn.Open(ctx, "sqlite://"+filepath.Join(dir, "inventory.db"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.SQL.Close()

	results := storetest.Record(storetest.Fresh(gormstore.Open, db), "gorm", string(db.Dialect), time.Minute)
	count := map[conformance.Verdict]int{}
	for _, r := range results {
		count[r.Verdict]++
		if r.Verdict != conformance.Pass {
			fmt.Println(r.Case, r.Verdict, r.Message)
		}
	}
	fmt.Println("every case passed:", count[conformance.Pass] == len(storetest.Cases()))
	fmt.Println(storetest.AnswersOf(results)["ST-GRP-004"])
	// Output:
	// every case passed: true
	// {"counts":[{"group":"cache","hosts":1},{"group":"db","hosts":1},{"group":"empty","hosts":0},{"group":"web","hosts":3}]}
}
