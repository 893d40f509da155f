//go:build linux

package netpoll_test

import (
	"testing"

	"github.com/twistbench/twistbench/bench/reactorbench"
	"github.com/twistbench/twistbench/impls/reactor/netpoll"
)

// BenchmarkEcho measures echo round trips on the netpoll back-end; see
// package reactorbench for the load and the metrics.
func BenchmarkEcho(b *testing.B) { reactorbench.Echo(b, netpoll.New) }

// BenchmarkPoetry measures poem downloads from the netpoll back-end.
func BenchmarkPoetry(b *testing.B) { reactorbench.Poetry(b, netpoll.New) }
