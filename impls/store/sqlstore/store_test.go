package sqlstore_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/twistbench/twistbench/containers"
	"github.com/twistbench/twistbench/impls/store"
	"github.com/twistbench/twistbench/impls/store/internal/backendtest"
)

// TestMain checks for leaked goroutines and ends the database servers the
// tests started (containers.Wrap).
func TestMain(m *testing.M) { goleak.VerifyTestMain(containers.Wrap(m)) }

// shared describes this back-end to the focused tests it shares with the
// other hand-SQL back-end (package backendtest); backend_test.go says what
// differs.
var shared = backendtest.Backend{
	Name:                   backend.name,
	Open:                   backend.open,
	AddMemberStatements:    backend.addMemberStatements,
	HostsInGroupStatements: backend.hostsInGroupStatements,
	PreloadStatements:      backend.preloadStatements,
}

// TestBackend runs the shared focused tests on every dialect available.
func TestBackend(t *testing.T) { backendtest.Run(t, shared) }

func eachDialect(t *testing.T, fn func(t *testing.T, db *store.DB)) { backendtest.EachDialect(t, fn) }

func newStore(tb testing.TB, db *store.DB) store.Store { return shared.NewStore(tb, db) }
