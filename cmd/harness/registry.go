package main

import (
	"fmt"
	"sort"
	"strings"

	"github.com/twistbench/twistbench/impls/reactor"
	"github.com/twistbench/twistbench/impls/reactor/epoll"
	"github.com/twistbench/twistbench/impls/reactor/gnet"
	"github.com/twistbench/twistbench/impls/reactor/netpoll"
	"github.com/twistbench/twistbench/impls/reactor/stdnet"
	"github.com/twistbench/twistbench/impls/store"
	"github.com/twistbench/twistbench/impls/store/gormstore"
	"github.com/twistbench/twistbench/impls/store/sqlstore"
	"github.com/twistbench/twistbench/impls/store/sqlxstore"
)

// reactors is the one place that knows every reactor back-end by name.
var reactors = map[string]reactor.New{
	"stdnet":  stdnet.New,
	"netpoll": netpoll.New,
	"epoll":   epoll.New,
	"gnet":    gnet.New,
}

// stores is the one place that knows every store back-end by name.
var stores = map[string]store.Open{
	"gorm": gormstore.Open,
	"sqlx": sqlxstore.Open,
	"sql":  sqlstore.Open,
}

// reactorOrder and storeOrder fix the order of columns in tables and reports.
var (
	reactorOrder = []string{"stdnet", "netpoll", "epoll", "gnet"}
	storeOrder   = []string{"gorm", "sqlx", "sql"}
)

// pick resolves a comma-separated selection ("all" or empty for every
// name) against a registry, naming what is unknown.
func pick(kind, sel string, order []string) ([]string, error) {
	if sel == "" || sel == "all" {
		return order, nil
	}
	known := map[string]bool{}
	for _, n := range order {
		known[n] = true
	}
	var out []string
	for _, n := range strings.Split(sel, ",") {
		n = strings.TrimSpace(n)
		if !known[n] {
			names := append([]string(nil), order...)
			sort.Strings(names)
			return nil, fmt.Errorf("unknown %s %q (known: %s)", kind, n, strings.Join(names, ", "))
		}
		out = append(out, n)
	}
	return out, nil
}
