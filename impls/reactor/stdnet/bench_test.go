//go:build linux

package stdnet_test

import (
	"testing"

	"github.com/twistbench/twistbench/bench/reactorbench"
	"github.com/twistbench/twistbench/impls/reactor/stdnet"
)

// BenchmarkEcho measures echo round trips on the stdnet back-end; see
// package reactorbench for the load and the metrics.
func BenchmarkEcho(b *testing.B) { reactorbench.Echo(b, stdnet.New) }

// BenchmarkPoetry measures poem downloads from the stdnet back-end.
func BenchmarkPoetry(b *testing.B) { reactorbench.Poetry(b, stdnet.New) }
