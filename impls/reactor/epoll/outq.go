package epoll

import "sync"

// block is a pooled buffer that small writes are appended to.
type block struct{ buf [blockSize]byte }

var blockPool = sync.Pool{New: func() any { return new(block) }}

// outq is a connection's outbound queue: chunks in order, the first one
// partly sent up to off. Small writes are appended to pooled blocks; a
// write of a block or more gets one chunk of its own, copied once, so a
// large write that drains slowly is never re-copied (no O(n²)).
type outq struct {
	bufs [][]byte
	blks []*block // parallel to bufs; nil for a chunk of its own
	head int      // first unsent chunk
	off  int      // bytes of bufs[head] already sent
	n    int      // bytes pending
}

// push copies p to the end of the queue.
func (q *outq) push(p []byte) {
	q.n += len(p)
	if k := len(q.bufs) - 1; k >= q.head && q.blks[k] != nil {
		if last := q.bufs[k]; cap(last)-len(last) >= len(p) {
			q.bufs[k] = append(last, p...)
			return
		}
	}
	if len(p) < blockSize {
		b := blockPool.Get().(*block)
		q.bufs = append(q.bufs, append(b.buf[:0], p...))
		q.blks = append(q.blks, b)
		return
	}
	q.bufs = append(q.bufs, append([]byte(nil), p...))
	q.blks = append(q.blks, nil)
}

// chunks is the number of chunks pending.
func (q *outq) chunks() int { return len(q.bufs) - q.head }

// consume drops the first n bytes, which were sent.
func (q *outq) consume(n int) {
	q.n -= n
	for n > 0 {
		b := q.bufs[q.head][q.off:]
		if n < len(b) {
			q.off += n
			return
		}
		n -= len(b)
		q.release(q.head)
		q.head++
		q.off = 0
	}
	if q.head == len(q.bufs) {
		q.bufs, q.blks, q.head = q.bufs[:0], q.blks[:0], 0
	} else if q.head >= 64 && q.head*2 >= len(q.bufs) {
		// Slide the live chunks down so the slices do not grow forever
		// under a steady trickle of writes.
		k := copy(q.bufs, q.bufs[q.head:])
		copy(q.blks, q.blks[q.head:])
		clear(q.bufs[k:])
		clear(q.blks[k:])
		q.bufs, q.blks, q.head = q.bufs[:k], q.blks[:k], 0
	}
}

func (q *outq) release(i int) {
	if b := q.blks[i]; b != nil {
		blockPool.Put(b)
	}
	q.bufs[i], q.blks[i] = nil, nil
}

// reset drops everything pending.
func (q *outq) reset() {
	for i := q.head; i < len(q.bufs); i++ {
		q.release(i)
	}
	q.bufs, q.blks, q.head, q.off, q.n = q.bufs[:0], q.blks[:0], 0, 0, 0
}
