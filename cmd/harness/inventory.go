package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/twistbench/twistbench/impls/store"
	"github.com/twistbench/twistbench/impls/store/schema"
	"github.com/twistbench/twistbench/impls/store/sqlconn"
)

func init() { commands = append(commands, newInventoryCmd) }

// defaultInventoryStore is the back-end inventory uses without --store: the
// hand-written SQL, the one with the fewest moving parts.
const defaultInventoryStore = "sql"

// inventoryPageSize is how many hosts one query of "hosts" fetches; the
// listing pages through the table in id order so that memory stays flat.
const inventoryPageSize = 1000

// inventoryFlags are the flags every inventory subcommand shares.
type inventoryFlags struct {
	store string
	dsn   string
}

// defaultInventoryDSN is a SQLite file in the working directory, the way
// the sqlite3 shell works: nothing to set up, and the file is where the
// user looks for it. Other databases are a --dsn away.
func defaultInventoryDSN() string {
	wd, err := os.Getwd()
	if err != nil {
		return ""
	}
	return "sqlite://" + filepath.ToSlash(filepath.Join(wd, "inventory.db"))
}

func newInventoryCmd() *cobra.Command {
	f := &inventoryFlags{}
	cmd := &cobra.Command{
		Use:   "inventory",
		Short: "Keep a host inventory in a database: the SQLAlchemy tutorial's queries as a tool",
		Long: `inventory reads and writes the host inventory (hosts, host groups and their
membership) through one of the store back-ends, in any database the project
supports. DSNs are URLs:

  postgres://user:password@host:5432/db
  mysql://user:password@host:3306/db
  sqlite:///absolute/path/inventory.db      (the default: inventory.db in
                                            the working directory)

Run "migrate" once to create the tables (idempotent); the other commands
expect them. Passwords never appear in output or errors.

On MySQL and MariaDB hostnames and group names compare case-insensitively
(the server's default collation): "Web1" and "web1" are the same host there
and different hosts on PostgreSQL and SQLite.`,
		Example: `  harness inventory migrate
  harness inventory add-host web1 192.168.2.243 --port 20000
  harness inventory add-group t1
  harness inventory join web1 t1
  harness inventory hosts --group t1
  harness inventory --store gorm --dsn postgres://me:secret@127.0.0.1:5432/inv groups --count --json`,
	}
	cmd.PersistentFlags().StringVar(&f.store, "store", defaultInventoryStore, "store back-end: gorm, sqlx or sql")
	cmd.PersistentFlags().StringVar(&f.dsn, "dsn", defaultInventoryDSN(), "database URL (postgres://, mysql://, sqlite:///path)")
	cmd.AddCommand(
		newInventoryMigrateCmd(f),
		newInventoryAddHostCmd(f),
		newInventoryAddGroupCmd(f),
		newInventoryJoinCmd(f),
		newInventoryHostsCmd(f),
		newInventoryGroupsCmd(f),
	)
	return cmd
}

// inventorySession is an open store over an open database.
type inventorySession struct {
	store.Store
	db *store.DB
}

// open opens the database and the back-end; close releases both.
func (f *inventoryFlags) open(ctx context.Context) (*inventorySession, error) {
	names, err := pick("store", f.store, storeOrder)
	if err != nil {
		return nil, err
	}
	if len(names) != 1 {
		return nil, fmt.Errorf("--store: name one back-end (gorm, sqlx or sql), not %q", f.store)
	}
	if f.dsn == "" {
		return nil, errors.New("--dsn: empty (and no working directory for the default SQLite file)")
	}
	db, err := sqlconn.Open(ctx, f.dsn) // its errors name the DSN redacted
	if err != nil {
		return nil, err
	}
	s, err := stores[names[0]](ctx, db)
	if err != nil {
		db.SQL.Close()
		return nil, fmt.Errorf("store %s on %s: %w", names[0], sqlconn.Redact(f.dsn), err)
	}
	return &inventorySession{Store: s, db: db}, nil
}

func (s *inventorySession) close() {
	_ = s.Store.Close()
	_ = s.db.SQL.Close()
}

// explain adds a hint to an error of a command that needs the schema when
// the tables are not there: the database error alone ("no such table",
// "relation does not exist", "Table doesn't exist") does not say what to run.
func (s *inventorySession) explain(ctx context.Context, f *inventoryFlags, err error) error {
	if err == nil || errors.Is(err, store.ErrInvalid) || errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrDuplicate) {
		return err
	}
	if c, derr := schema.Describe(ctx, s.db); derr == nil {
		if _, ok := c.Table("hosts"); !ok {
			return fmt.Errorf("no inventory in %s (run \"harness inventory --dsn ... migrate\" first): %w", sqlconn.Redact(f.dsn), err)
		}
	}
	return err
}

// with opens a session, runs fn, explains its error and closes.
func (f *inventoryFlags) with(cmd *cobra.Command, fn func(ctx context.Context, s *inventorySession) error) error {
	ctx := cmd.Context()
	s, err := f.open(ctx)
	if err != nil {
		return err
	}
	defer s.close()
	return s.explain(ctx, f, fn(ctx, s))
}

func newInventoryMigrateCmd(f *inventoryFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Create the inventory's tables if they do not exist",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return f.with(cmd, func(ctx context.Context, s *inventorySession) error {
				if err := s.Migrate(ctx); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "migrated %s (%s, store %s)\n", sqlconn.Redact(f.dsn), s.db.Flavor, f.store)
				return nil
			})
		},
	}
}

func newInventoryAddHostCmd(f *inventoryFlags) *cobra.Command {
	var port int
	cmd := &cobra.Command{
		Use:   "add-host NAME IP",
		Short: "Add a host (hostname and address are unique)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return f.with(cmd, func(ctx context.Context, s *inventorySession) error {
				h := store.Host{Hostname: args[0], IPAddr: args[1], Port: port}
				if err := s.CreateHost(ctx, &h); err != nil {
					if errors.Is(err, store.ErrDuplicate) {
						return fmt.Errorf("add-host %s %s: a host with that name or address exists: %w", args[0], args[1], err)
					}
					return fmt.Errorf("add-host: %w", err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "added host %s %s:%d (id %d)\n", h.Hostname, h.IPAddr, h.Port, h.ID)
				return nil
			})
		},
	}
	cmd.Flags().IntVar(&port, "port", store.DefaultPort, "SSH port, 0-65535")
	return cmd
}

func newInventoryAddGroupCmd(f *inventoryFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "add-group NAME",
		Short: "Add a host group (names are unique)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return f.with(cmd, func(ctx context.Context, s *inventorySession) error {
				g := store.HostGroup{Name: args[0]}
				if err := s.CreateGroup(ctx, &g); err != nil {
					if errors.Is(err, store.ErrDuplicate) {
						return fmt.Errorf("add-group %s: the group exists: %w", args[0], err)
					}
					return fmt.Errorf("add-group: %w", err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "added group %s (id %d)\n", g.Name, g.ID)
				return nil
			})
		},
	}
}

func newInventoryJoinCmd(f *inventoryFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "join HOST GROUP",
		Short: "Make a host a member of a group",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return f.with(cmd, func(ctx context.Context, s *inventorySession) error {
				if err := s.AddHostToGroup(ctx, args[0], args[1]); err != nil {
					if errors.Is(err, store.ErrDuplicate) {
						return fmt.Errorf("join %s %s: already a member: %w", args[0], args[1], err)
					}
					return fmt.Errorf("join: %w", err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s joined %s\n", args[0], args[1])
				return nil
			})
		},
	}
}

func newInventoryHostsCmd(f *inventoryFlags) *cobra.Command {
	var group string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "hosts",
		Short: "List hosts by id, or the hosts of a group by name",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return f.with(cmd, func(ctx context.Context, s *inventorySession) error {
				var hosts []store.Host
				var err error
				if cmd.Flags().Changed("group") {
					hosts, err = s.HostsInGroup(ctx, group)
				} else {
					hosts, err = allHosts(ctx, s)
				}
				if err != nil {
					return fmt.Errorf("hosts: %w", err)
				}
				if asJSON {
					return writeJSON(cmd.OutOrStdout(), hosts)
				}
				return writeTable(cmd.OutOrStdout(), []string{"ID", "HOSTNAME", "IP", "PORT"}, len(hosts), func(i int) []any {
					h := hosts[i]
					return []any{h.ID, h.Hostname, h.IPAddr, h.Port}
				})
			})
		},
	}
	cmd.Flags().StringVar(&group, "group", "", "only the hosts of this group, by hostname")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON array")
	return cmd
}

// allHosts pages through every host in id order.
func allHosts(ctx context.Context, s store.Ops) ([]store.Host, error) {
	all := []store.Host{}
	for {
		page, err := s.HostsPage(ctx, len(all), inventoryPageSize)
		if err != nil {
			return nil, err
		}
		all = append(all, page...)
		if len(page) < inventoryPageSize {
			return all, nil
		}
	}
}

func newInventoryGroupsCmd(f *inventoryFlags) *cobra.Command {
	var withCount, asJSON bool
	cmd := &cobra.Command{
		Use:   "groups",
		Short: "List groups by name, with --count their number of hosts (empty groups show 0)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return f.with(cmd, func(ctx context.Context, s *inventorySession) error {
				counts, err := s.GroupHostCounts(ctx)
				if err != nil {
					return fmt.Errorf("groups: %w", err)
				}
				out := cmd.OutOrStdout()
				if !withCount {
					names := make([]string, len(counts))
					for i, c := range counts {
						names[i] = c.Group
					}
					if asJSON {
						return writeJSON(out, names)
					}
					return writeTable(out, []string{"GROUP"}, len(names), func(i int) []any { return []any{names[i]} })
				}
				if asJSON {
					return writeJSON(out, counts)
				}
				return writeTable(out, []string{"GROUP", "HOSTS"}, len(counts), func(i int) []any {
					return []any{counts[i].Group, counts[i].Hosts}
				})
			})
		},
	}
	cmd.Flags().BoolVar(&withCount, "count", false, "show the number of hosts in each group")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON array")
	return cmd
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// writeTable prints a header and n rows aligned in columns.
func writeTable(w io.Writer, header []string, n int, row func(i int) []any) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for i, h := range header {
		if i > 0 {
			fmt.Fprint(tw, "\t")
		}
		fmt.Fprint(tw, h)
	}
	fmt.Fprintln(tw)
	for i := range n {
		for j, v := range row(i) {
			if j > 0 {
				fmt.Fprint(tw, "\t")
			}
			fmt.Fprint(tw, v)
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}
