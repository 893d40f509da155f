package stdnet_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/twistbench/twistbench/conformance/reactortest"
	"github.com/twistbench/twistbench/impls/reactor/stdnet"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestConformance(t *testing.T) { reactortest.Run(t, stdnet.New) }
