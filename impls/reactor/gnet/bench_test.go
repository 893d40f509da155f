//go:build linux

package gnet_test

import (
	"testing"

	"github.com/twistbench/twistbench/bench/reactorbench"
	"github.com/twistbench/twistbench/impls/reactor/gnet"
)

// BenchmarkEcho measures echo round trips on the gnet back-end; see
// package reactorbench for the load and the metrics.
func BenchmarkEcho(b *testing.B) { reactorbench.Echo(b, gnet.New) }

// BenchmarkPoetry measures poem downloads from the gnet back-end.
func BenchmarkPoetry(b *testing.B) { reactorbench.Poetry(b, gnet.New) }
