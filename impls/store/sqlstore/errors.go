package sqlstore

import (
	"errors"
	"fmt"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/mattn/go-sqlite3"

	"github.com/twistbench/twistbench/impls/store"
)

// Driver codes of a unique violation.
const (
	pgUniqueViolation = "23505" // SQLSTATE unique_violation
	mysqlDupEntry     = 1062    // ER_DUP_ENTRY (MySQL and MariaDB)
)

// wrap names the operation in err and maps a unique violation of any of
// the three drivers to store.ErrDuplicate, keeping the driver error in the
// chain for errors.As. A nil err stays nil.
func wrap(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case isDuplicate(err):
		return fmt.Errorf("sqlstore: %s: %w: %w", op, store.ErrDuplicate, err)
	default:
		return fmt.Errorf("sqlstore: %s: %w", op, err)
	}
}

func isDuplicate(err error) bool {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		return pg.Code == pgUniqueViolation
	}
	var my *mysql.MySQLError
	if errors.As(err, &my) {
		return my.Number == mysqlDupEntry
	}
	var lite sqlite3.Error
	if errors.As(err, &lite) {
		return lite.ExtendedCode == sqlite3.ErrConstraintUnique || lite.ExtendedCode == sqlite3.ErrConstraintPrimaryKey
	}
	return false
}
