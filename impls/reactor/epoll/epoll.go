// Package epoll is the epoll back-end of the reactor contract.
package epoll

import (
	"errors"

	"github.com/twistbench/twistbench/impls/reactor"
)

// New starts a reactor. (Placeholder until the back-end lands.)
func New() (reactor.Reactor, error) { return nil, errors.New("epoll: not implemented yet") }
