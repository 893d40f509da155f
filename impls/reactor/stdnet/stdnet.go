// Package stdnet is the stdnet back-end of the reactor contract.
package stdnet

import (
	"errors"

	"github.com/twistbench/twistbench/impls/reactor"
)

// New starts a reactor. (Placeholder until the back-end lands.)
func New() (reactor.Reactor, error) { return nil, errors.New("stdnet: not implemented yet") }
