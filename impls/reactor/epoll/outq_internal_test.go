package epoll

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// TestOutqMatchesBuffer drives the outbound queue with random pushes and
// partial sends, and checks it against a bytes.Buffer model: what is
// pending, in order, and that a large push is kept as one chunk.
func TestOutqMatchesBuffer(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var q outq
	var model bytes.Buffer
	next := byte(0)
	for step := range 20000 {
		if rng.IntN(3) > 0 {
			size := rng.IntN(100)
			switch rng.IntN(10) {
			case 0:
				size = blockSize + rng.IntN(3*blockSize)
			case 1:
				size = blockSize - 1 - rng.IntN(8)
			}
			p := make([]byte, size)
			for i := range p {
				p[i] = next
				next++
			}
			chunksBefore := q.chunks()
			q.push(p)
			model.Write(p)
			for i := range p {
				p[i] = 0xFF // the queue must hold a copy
			}
			if size >= blockSize && q.chunks() != chunksBefore+1 {
				t.Fatalf("step %d: a %d-byte push made %d chunks, want one of its own", step, size, q.chunks()-chunksBefore)
			}
		} else if q.n > 0 {
			n := 1 + rng.IntN(q.n)
			q.consume(n)
			model.Next(n)
		}
		if q.n != model.Len() {
			t.Fatalf("step %d: n = %d, model has %d", step, q.n, model.Len())
		}
		if step%97 == 0 {
			if got := q.pending(); !bytes.Equal(got, model.Bytes()) {
				t.Fatalf("step %d: pending bytes differ from the model at %d", step, firstDiffAt(got, model.Bytes()))
			}
		}
	}
	q.reset()
	if q.n != 0 || q.chunks() != 0 {
		t.Fatalf("after reset: n = %d, chunks = %d", q.n, q.chunks())
	}
}

// pending concatenates what q holds, for the test.
func (q *outq) pending() []byte {
	var b []byte
	for i := q.head; i < len(q.bufs); i++ {
		c := q.bufs[i]
		if i == q.head {
			c = c[q.off:]
		}
		b = append(b, c...)
	}
	return b
}

func firstDiffAt(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
