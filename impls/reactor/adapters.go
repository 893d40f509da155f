package reactor

import "net"

// FactoryFunc adapts a function to Factory, for servers whose protocol needs
// nothing but the peer address.
type FactoryFunc func(remote net.Addr) Protocol

// BuildProtocol calls f.
func (f FactoryFunc) BuildProtocol(remote net.Addr) Protocol { return f(remote) }

// ClientFuncs is a ClientFactory assembled from functions; a nil Failed or
// Lost hook is ignored. It spares each client protocol a factory type.
type ClientFuncs struct {
	Build  func(remote net.Addr) Protocol
	Failed func(addr string, err error)
	Lost   func(addr string, err error)
}

// BuildProtocol calls c.Build.
func (c ClientFuncs) BuildProtocol(remote net.Addr) Protocol { return c.Build(remote) }

// ClientConnectionFailed calls c.Failed if set.
func (c ClientFuncs) ClientConnectionFailed(addr string, err error) {
	if c.Failed != nil {
		c.Failed(addr, err)
	}
}

// ClientConnectionLost calls c.Lost if set.
func (c ClientFuncs) ClientConnectionLost(addr string, err error) {
	if c.Lost != nil {
		c.Lost(addr, err)
	}
}
