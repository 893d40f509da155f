package sqlxstore

import (
	"errors"
	"fmt"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/mattn/go-sqlite3"

	"github.com/twistbench/twistbench/impls/store"
)

// Driver codes this back-end maps.
const (
	pgUniqueViolation     = "23505" // SQLSTATE unique_violation
	pgForeignKeyViolation = "23503" // SQLSTATE foreign_key_violation
	mysqlDupEntry         = 1062    // ER_DUP_ENTRY (MySQL and MariaDB)
	mysqlNoReferencedRow  = 1452    // ER_NO_REFERENCED_ROW_2
)

// wrap names the operation in err and maps a unique violation to
// store.ErrDuplicate, keeping the driver error in the chain for errors.As.
// A nil err stays nil.
func wrap(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrDuplicate), errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrInvalid):
		return err // already said
	case isDuplicate(err):
		return fmt.Errorf("sqlxstore: %s: %w: %w", op, store.ErrDuplicate, err)
	default:
		return fmt.Errorf("sqlxstore: %s: %w", op, err)
	}
}

func isDuplicate(err error) bool {
	var pg *pgconn.PgError
	var my *mysql.MySQLError
	var lite sqlite3.Error
	switch {
	case errors.As(err, &pg):
		return pg.Code == pgUniqueViolation
	case errors.As(err, &my):
		return my.Number == mysqlDupEntry
	case errors.As(err, &lite):
		return lite.ExtendedCode == sqlite3.ErrConstraintUnique || lite.ExtendedCode == sqlite3.ErrConstraintPrimaryKey
	}
	return false
}

// isForeignKey reports a foreign key violation: a referenced row is
// missing.
func isForeignKey(err error) bool {
	var pg *pgconn.PgError
	var my *mysql.MySQLError
	var lite sqlite3.Error
	switch {
	case errors.As(err, &pg):
		return pg.Code == pgForeignKeyViolation
	case errors.As(err, &my):
		return my.Number == mysqlNoReferencedRow
	case errors.As(err, &lite):
		return lite.ExtendedCode == sqlite3.ErrConstraintForeignKey
	}
	return false
}
