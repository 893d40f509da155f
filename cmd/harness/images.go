package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/twistbench/twistbench/containers"
	"github.com/twistbench/twistbench/impls/store"
)

func init() { commands = append(commands, newImagesCmd) }

// imageFlags adds --postgres-image and --mysql-image to cmd; the returned
// function builds the provider they configure (over the environment).
// Commands that need databases share it so the flags mean the same
// everywhere.
func imageFlags(cmd *cobra.Command) func() *containers.Provider {
	var pg, my string
	cmd.Flags().StringVar(&pg, "postgres-image", "", "PostgreSQL image (default $"+containers.EnvPostgresImage+", else "+containers.DefaultPostgresImage+")")
	cmd.Flags().StringVar(&my, "mysql-image", "", "MySQL image (default $"+containers.EnvMySQLImage+", else "+containers.DefaultMySQLImage+")")
	return func() *containers.Provider {
		p := containers.NewProvider()
		if pg != "" {
			p.PostgresImage = pg
		}
		if my != "" {
			p.MySQLImage = my
		}
		return p
	}
}

func newImagesCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "images",
		Short: "database images: build them offline, see which one each dialect uses, remove leftovers",
		Long: `PostgreSQL and MySQL run in containers. The official images are the default;
on a host without a registry, "harness images build" builds equivalents from
Debian packages (MariaDB stands in for MySQL: Debian ships it as its MySQL),
and the harness falls back to them when the official images cannot be had.`,
	}
	cmd.AddCommand(newImagesBuildCmd(), newImagesListCmd(), newImagesPruneCmd())
	return cmd
}

func newImagesBuildCmd() *cobra.Command {
	var o containers.BuildOptions
	cmd := &cobra.Command{
		Use:   "build",
		Short: "build " + containers.OfflinePostgresImage + " and " + containers.OfflineMySQLImage + " from Debian packages (needs root, debootstrap, Docker)",
		Long: `build debootstraps a minimal Debian from the mirror and suite of this machine's
apt sources, installs the PostgreSQL and MariaDB server packages into copies
of it, and imports each as an image whose entrypoint honours the official
images' environment (POSTGRES_*, MYSQL_*). Images that exist are kept unless
--force.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t0 := time.Now()
			if err := containers.BuildImages(cmd.Context(), o, cmd.OutOrStdout(), cmd.ErrOrStderr()); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "images ready in %s\n", time.Since(t0).Round(time.Second))
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.Force, "force", false, "rebuild images that already exist")
	f.StringVar(&o.Only, "only", "", "build one image: postgres or mariadb")
	f.StringVar(&o.Mirror, "mirror", "", "Debian mirror URL (default: from the apt sources)")
	f.StringVar(&o.Suite, "suite", "", "Debian suite (default: from the apt sources)")
	return cmd
}

func newImagesListCmd() *cobra.Command {
	var pull bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "show which database each dialect would use, and why",
		Args:  cobra.NoArgs,
	}
	provider := imageFlags(cmd)
	cmd.Flags().BoolVar(&pull, "pull", false, "pull missing images now (bounded) instead of saying what would be tried")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		p := provider()
		defer p.Close()
		w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "DIALECT\tSOURCE\tIMAGE\tWHY")
		for _, d := range store.Dialects {
			c := p.Choose(cmd.Context(), d, pull)
			img, why := c.Image, c.Why
			if img == "" {
				img = "-"
			}
			if c.Err != nil {
				why = c.Err.Error()
				if _, ok := containers.Skippable(c.Err); ok {
					why = "skipped: " + why
				}
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", d, c.Source, img, why)
		}
		return w.Flush()
	}
	return cmd
}

func newImagesPruneCmd() *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "prune",
		Short: "remove database containers left behind by harness or test processes that are gone",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			n, err := containers.Prune(cmd.Context(), all)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed %d container(s)\n", n)
			return nil
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "also remove containers of processes still running")
	return cmd
}
