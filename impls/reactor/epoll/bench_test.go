//go:build linux

package epoll_test

import (
	"testing"

	"github.com/twistbench/twistbench/bench/reactorbench"
	"github.com/twistbench/twistbench/impls/reactor/epoll"
)

// BenchmarkEcho measures echo round trips on the epoll back-end; see
// package reactorbench for the load and the metrics.
func BenchmarkEcho(b *testing.B) { reactorbench.Echo(b, epoll.New) }

// BenchmarkPoetry measures poem downloads from the epoll back-end.
func BenchmarkPoetry(b *testing.B) { reactorbench.Poetry(b, epoll.New) }
