// Package sqlstore is a back-end of the store contract.
package sqlstore

import (
	"context"
	"errors"

	"github.com/twistbench/twistbench/impls/store"
)

// Open opens the back-end on db. (Placeholder until the back-end lands.)
func Open(ctx context.Context, db *store.DB) (store.Store, error) {
	return nil, errors.New("sqlstore: not implemented yet")
}
