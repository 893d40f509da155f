package poetry

import (
	"net"
	"sync"
)

// fakeTransport records what a protocol does to its transport, the way
// Twisted's StringTransport lets a protocol be tested without a network.
// Write copies, as the contract requires of real transports.
type fakeTransport struct {
	mu      sync.Mutex
	written []byte
	lost    int // LoseConnection calls
	aborted int // AbortConnection calls
}

func (f *fakeTransport) Write(p []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.written = append(f.written, p...)
}

func (f *fakeTransport) WriteSequence(ps [][]byte) {
	for _, p := range ps {
		f.Write(p)
	}
}

func (f *fakeTransport) LoseConnection() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lost++
}

func (f *fakeTransport) AbortConnection() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.aborted++
}

func (f *fakeTransport) LocalAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}
}
func (f *fakeTransport) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 2}
}
func (f *fakeTransport) PauseReading()  {}
func (f *fakeTransport) ResumeReading() {}

func (f *fakeTransport) snapshot() (written []byte, lost, aborted int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]byte(nil), f.written...), f.lost, f.aborted
}
