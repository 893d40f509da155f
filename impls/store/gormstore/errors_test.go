package gormstore

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/twistbench/twistbench/impls/store"
	"github.com/twistbench/twistbench/impls/store/sqlconn"
)

// TestTranslateErrorLosesTheMessage records why TranslateError is off: on
// SQLite, through sqlconn, GORM's translator does recognise a duplicate, but
// returns gorm.ErrDuplicatedKey alone, without the database's message (which
// column), while mapErr keeps the driver's error in the chain.
func TestTranslateErrorLosesTheMessage(t *testing.T) {
	db, err := sqlconn.Open(t.Context(), "sqlite://"+filepath.Join(t.TempDir(), "x.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.SQL.Close()
	d, err := dialectorFor(db)
	if err != nil {
		t.Fatal(err)
	}
	g, err := gorm.Open(d, &gorm.Config{TranslateError: true, Logger: logger.Discard, NamingStrategy: namer{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.AutoMigrate(models...); err != nil {
		t.Fatal(err)
	}
	h := hostRow{Hostname: "alpha", IPAddr: "10.0.0.1", Port: 22}
	if err := g.Create(&h).Error; err != nil {
		t.Fatal(err)
	}
	dup := hostRow{Hostname: "alpha", IPAddr: "10.0.0.2", Port: 22}
	translated := g.Create(&dup).Error
	if !errors.Is(translated, gorm.ErrDuplicatedKey) {
		t.Fatalf("TranslateError on SQLite gave %v, want gorm.ErrDuplicatedKey", translated)
	}
	if strings.Contains(translated.Error(), "hostname") {
		t.Errorf("GORM's translated error now names the column (%q): TranslateError could be reconsidered", translated)
	}

	s, err := Open(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	mapped := s.CreateHost(t.Context(), &store.Host{Hostname: "alpha", IPAddr: "10.0.0.3"})
	if !errors.Is(mapped, store.ErrDuplicate) || !strings.Contains(mapped.Error(), "hosts.hostname") {
		t.Errorf("CreateHost(duplicate) = %v, want ErrDuplicate naming hosts.hostname", mapped)
	}
}

func TestMapErr(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"not found", gorm.ErrRecordNotFound, store.ErrNotFound},
		{"translated duplicate", gorm.ErrDuplicatedKey, store.ErrDuplicate},
		{"translated foreign key", gorm.ErrForeignKeyViolated, store.ErrNotFound},
		{"other", errors.New("boom"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mapErr("op", tt.err)
			if tt.want != nil && !errors.Is(got, tt.want) {
				t.Errorf("mapErr(%v) = %v, want %v", tt.err, got, tt.want)
			}
			for _, s := range []error{store.ErrNotFound, store.ErrDuplicate, store.ErrInvalid} {
				if s != tt.want && errors.Is(got, s) {
					t.Errorf("mapErr(%v) = %v, matches %v too", tt.err, got, s)
				}
			}
			if !errors.Is(got, tt.err) && tt.err != gorm.ErrRecordNotFound {
				t.Errorf("mapErr(%v) dropped the original error: %v", tt.err, got)
			}
		})
	}
	if mapErr("op", nil) != nil {
		t.Error("mapErr(nil) != nil")
	}
}
