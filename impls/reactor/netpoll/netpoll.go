// Package netpoll is the netpoll back-end of the reactor contract.
package netpoll

import (
	"errors"

	"github.com/twistbench/twistbench/impls/reactor"
)

// New starts a reactor. (Placeholder until the back-end lands.)
func New() (reactor.Reactor, error) { return nil, errors.New("netpoll: not implemented yet") }
