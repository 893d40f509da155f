// Package gnet is the gnet back-end of the reactor contract.
package gnet

import (
	"errors"

	"github.com/twistbench/twistbench/impls/reactor"
)

// New starts a reactor. (Placeholder until the back-end lands.)
func New() (reactor.Reactor, error) { return nil, errors.New("gnet: not implemented yet") }
