package gormstore_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/twistbench/twistbench/containers"
	"github.com/twistbench/twistbench/impls/store"
)

// Benchmarks per operation, the same operations and seeds as sqlstore's
// and sqlxstore's, one sub-benchmark per configuration and dialect, named
// in the Go benchmark format with keys so that benchstat compares them
// without extra code (-col /backend):
//
//	BenchmarkHostByName/backend=gorm/dialect=sqlite           Open (tuned)
//	BenchmarkHostByName/backend=gorm-untuned/dialect=sqlite   OpenWith(Options{})
//
// The untuned rows show what GORM's defaults cost: a transaction around
// every single write and no prepared statements.

// benchEach runs fn on a fresh store per configuration and dialect, after
// seed (outside the timer). A dialect this machine cannot provide is
// skipped with the reason.
func benchEach(b *testing.B, seed func(b *testing.B, s store.Store), fn func(b *testing.B, s store.Store)) {
	for _, v := range variants {
		name := "gorm"
		if v.name != "tuned" {
			name += "-" + v.name
		}
		for _, d := range store.Dialects {
			b.Run("backend="+name+"/dialect="+string(d), func(b *testing.B) {
				db := containers.TestDB(b, d)
				ctx := context.Background()
				s, err := v.open(ctx, db)
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { s.Close() })
				if err := s.Migrate(ctx); err != nil {
					b.Fatal(err)
				}
				if seed != nil {
					seed(b, s)
				}
				b.ReportAllocs()
				b.ResetTimer()
				fn(b, s)
			})
		}
	}
}

func benchHosts(from, n int) []store.Host {
	hosts := make([]store.Host, n)
	for i := range hosts {
		k := from + i
		hosts[i] = store.Host{Hostname: fmt.Sprintf("host%07d", k), IPAddr: fmt.Sprintf("10.%d.%d.%d", k>>16&255, k>>8&255, k&255)}
	}
	return hosts
}

// seedInventory: 1000 hosts in 10 groups of 100, and one empty group.
func seedInventory(b *testing.B, s store.Store) {
	ctx := context.Background()
	if err := s.CreateHosts(ctx, benchHosts(0, 1000)); err != nil {
		b.Fatal(err)
	}
	for g := range 11 {
		if err := s.CreateGroup(ctx, &store.HostGroup{Name: fmt.Sprintf("group%02d", g)}); err != nil {
			b.Fatal(err)
		}
	}
	for i := range 1000 {
		if err := s.AddHostToGroup(ctx, fmt.Sprintf("host%07d", i), fmt.Sprintf("group%02d", i%10)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCreateHost(b *testing.B) {
	benchEach(b, nil, func(b *testing.B, s store.Store) {
		ctx := context.Background()
		i := 0
		for b.Loop() {
			h := benchHosts(i, 1)[0]
			if err := s.CreateHost(ctx, &h); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

func BenchmarkCreateHosts100(b *testing.B) {
	benchEach(b, nil, func(b *testing.B, s store.Store) {
		ctx := context.Background()
		i := 0
		for b.Loop() {
			if err := s.CreateHosts(ctx, benchHosts(i*100, 100)); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

func BenchmarkHostByName(b *testing.B) {
	benchEach(b, seedInventory, func(b *testing.B, s store.Store) {
		ctx := context.Background()
		i := 0
		for b.Loop() {
			if _, err := s.HostByName(ctx, fmt.Sprintf("host%07d", i%1000)); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

func BenchmarkHostsInGroup(b *testing.B) {
	benchEach(b, seedInventory, func(b *testing.B, s store.Store) {
		ctx := context.Background()
		i := 0
		for b.Loop() {
			hosts, err := s.HostsInGroup(ctx, fmt.Sprintf("group%02d", i%10))
			if err != nil || len(hosts) != 100 {
				b.Fatalf("%d hosts, %v", len(hosts), err)
			}
			i++
		}
	})
}

func BenchmarkGroupHostCounts(b *testing.B) {
	benchEach(b, seedInventory, func(b *testing.B, s store.Store) {
		ctx := context.Background()
		for b.Loop() {
			counts, err := s.GroupHostCounts(ctx)
			if err != nil || len(counts) != 11 {
				b.Fatalf("%d groups, %v", len(counts), err)
			}
		}
	})
}

func BenchmarkParentsWithChildren100(b *testing.B) {
	seed := func(b *testing.B, s store.Store) {
		for i := range 100 {
			p := store.Parent{Name: fmt.Sprintf("p%d", i), Children: []store.Child{{Name: "a"}, {Name: "b"}, {Name: "c"}}}
			if err := s.CreateParent(context.Background(), &p); err != nil {
				b.Fatal(err)
			}
		}
	}
	benchEach(b, seed, func(b *testing.B, s store.Store) {
		ctx := context.Background()
		for b.Loop() {
			ps, err := s.ParentsWithChildren(ctx)
			if err != nil || len(ps) != 100 {
				b.Fatalf("%d parents, %v", len(ps), err)
			}
		}
	})
}

func BenchmarkUpdateHostPort(b *testing.B) {
	benchEach(b, seedInventory, func(b *testing.B, s store.Store) {
		ctx := context.Background()
		i := 0
		for b.Loop() {
			f := store.HostFilter{Hostnames: []string{fmt.Sprintf("host%07d", i%1000)}}
			if n, err := s.UpdateHostPort(ctx, f, 1000+i%2); err != nil || n != 1 {
				b.Fatalf("%d rows, %v", n, err)
			}
			i++
		}
	})
}
