package schema

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/twistbench/twistbench/impls/store"
)

// Catalog is what a database holds for the tables of the schema, read from
// the database's own catalog (pg_catalog, information_schema, SQLite
// pragmas) and normalised so that two catalogs of the same dialect compare
// equal when the tables behave the same, whoever created them: constraint
// and index names are left out (GORM names them its own way), and unique
// indexes count as unique constraints (they enforce the same thing).
type Catalog struct {
	Tables []Table `json:"tables"` // in the order of Tables; absent tables are left out
}

// Table is one table of a Catalog.
type Table struct {
	Name        string       `json:"name"`
	Columns     []Column     `json:"columns"`      // in table order
	PrimaryKey  []string     `json:"primary_key"`  // columns in key order
	Unique      [][]string   `json:"unique"`       // column lists, sorted
	ForeignKeys []ForeignKey `json:"foreign_keys"` // sorted by columns
}

// Column is one column of a Table.
type Column struct {
	Name string `json:"name"`
	// Type is normalised per dialect: "bigint", "integer", "varchar(64)".
	// On SQLite every integer type is "integer", since SQLite stores any
	// of them as the same 64-bit integer (type affinity).
	Type     string `json:"type"`
	Nullable bool   `json:"nullable"`
	// Default is the default expression as the database shows it,
	// unquoted ("22"), or "" for none. An auto-generated id has none: see
	// Auto.
	Default string `json:"default,omitempty"`
	// Auto: the database generates the value (identity, serial,
	// AUTO_INCREMENT, SQLite's rowid alias).
	Auto bool `json:"auto,omitempty"`
}

// ForeignKey is one foreign key of a Table.
type ForeignKey struct {
	Columns    []string `json:"columns"`
	RefTable   string   `json:"ref_table"`
	RefColumns []string `json:"ref_columns"`
	// OnDelete is the referential action in upper case: "CASCADE",
	// "NO ACTION", "RESTRICT", "SET NULL", "SET DEFAULT".
	OnDelete string `json:"on_delete"`
}

// Table returns the table called name, or false.
func (c Catalog) Table(name string) (Table, bool) {
	for _, t := range c.Tables {
		if t.Name == name {
			return t, true
		}
	}
	return Table{}, false
}

// Diff lists the differences between c (what is) and want, one line each;
// none means the catalogs are equal.
func (c Catalog) Diff(want Catalog) []string {
	var out []string
	for _, w := range want.Tables {
		g, ok := c.Table(w.Name)
		if !ok {
			out = append(out, fmt.Sprintf("table %s: missing", w.Name))
			continue
		}
		out = append(out, diffTable(g, w)...)
	}
	for _, g := range c.Tables {
		if _, ok := want.Table(g.Name); !ok {
			out = append(out, fmt.Sprintf("table %s: unexpected", g.Name))
		}
	}
	return out
}

func diffTable(got, want Table) []string {
	var out []string
	cols := map[string]Column{}
	for _, c := range got.Columns {
		cols[c.Name] = c
	}
	for _, w := range want.Columns {
		g, ok := cols[w.Name]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("%s.%s: missing", want.Name, w.Name))
		case g != w:
			out = append(out, fmt.Sprintf("%s.%s: got %+v, want %+v", want.Name, w.Name, g, w))
		}
		delete(cols, w.Name)
	}
	for _, g := range got.Columns {
		if _, extra := cols[g.Name]; extra {
			out = append(out, fmt.Sprintf("%s.%s: unexpected column %+v", want.Name, g.Name, g))
		}
	}
	if !slices.Equal(got.PrimaryKey, want.PrimaryKey) {
		out = append(out, fmt.Sprintf("%s: primary key %v, want %v", want.Name, got.PrimaryKey, want.PrimaryKey))
	}
	if !slices.EqualFunc(got.Unique, want.Unique, slices.Equal) {
		out = append(out, fmt.Sprintf("%s: unique %v, want %v", want.Name, got.Unique, want.Unique))
	}
	if !slices.EqualFunc(got.ForeignKeys, want.ForeignKeys, fkEqual) {
		out = append(out, fmt.Sprintf("%s: foreign keys %+v, want %+v", want.Name, got.ForeignKeys, want.ForeignKeys))
	}
	return out
}

func fkEqual(a, b ForeignKey) bool {
	return slices.Equal(a.Columns, b.Columns) && a.RefTable == b.RefTable &&
		slices.Equal(a.RefColumns, b.RefColumns) && a.OnDelete == b.OnDelete
}

// Describe reads the catalog of the schema's tables from db.
func Describe(ctx context.Context, db *store.DB) (Catalog, error) {
	var d describer
	switch db.Dialect {
	case store.Postgres:
		d = pgDescriber{}
	case store.MySQL:
		d = mysqlDescriber{}
	case store.SQLite:
		d = sqliteDescriber{}
	default:
		return Catalog{}, fmt.Errorf("schema: unknown dialect %q", db.Dialect)
	}
	var c Catalog
	for _, name := range Tables {
		t, ok, err := d.table(ctx, db.SQL, name)
		if err != nil {
			return Catalog{}, fmt.Errorf("schema: describe %s on %s: %w", name, db.Dialect, err)
		}
		if !ok {
			continue
		}
		slices.SortFunc(t.Unique, func(a, b []string) int { return strings.Compare(strings.Join(a, ","), strings.Join(b, ",")) })
		t.Unique = slices.CompactFunc(t.Unique, slices.Equal)
		slices.SortFunc(t.ForeignKeys, func(a, b ForeignKey) int {
			return strings.Compare(strings.Join(a.Columns, ","), strings.Join(b.Columns, ","))
		})
		c.Tables = append(c.Tables, t)
	}
	return c, nil
}

// describer reads one table; ok is false if the table does not exist.
type describer interface {
	table(ctx context.Context, db *sql.DB, name string) (t Table, ok bool, err error)
}

// pgDescriber reads pg_catalog rather than information_schema: the latter
// shows only constraints, not unique indexes (GORM's uniqueIndex), and hides
// objects the user does not own.
type pgDescriber struct{}

func (pgDescriber) table(ctx context.Context, db *sql.DB, name string) (Table, bool, error) {
	t := Table{Name: name}
	rows, err := db.QueryContext(ctx, `
SELECT a.attname, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull,
       coalesce(pg_get_expr(d.adbin, d.adrelid), ''), a.attidentity <> ''
FROM pg_attribute a
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum`, name)
	if err != nil {
		return t, false, err
	}
	for rows.Next() {
		var c Column
		if err := rows.Scan(&c.Name, &c.Type, &c.Nullable, &c.Default, &c.Auto); err != nil {
			rows.Close()
			return t, false, err
		}
		c.Type = strings.Replace(c.Type, "character varying", "varchar", 1)
		if strings.HasPrefix(c.Default, "nextval(") { // serial, bigserial
			c.Default, c.Auto = "", true
		}
		t.Columns = append(t.Columns, c)
	}
	if err := closeRows(rows); err != nil || len(t.Columns) == 0 {
		return t, false, err
	}
	// Primary key and unique indexes (constraints or not), columns in key
	// order.
	rows, err = db.QueryContext(ctx, `
SELECT i.indisprimary,
       array_to_string(array(
         SELECT a.attname FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(num, ord)
         JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.num
         ORDER BY k.ord), ',')
FROM pg_index i
WHERE i.indrelid = to_regclass($1) AND i.indisunique AND i.indpred IS NULL`, name)
	if err != nil {
		return t, false, err
	}
	for rows.Next() {
		var primary bool
		var cols string
		if err := rows.Scan(&primary, &cols); err != nil {
			rows.Close()
			return t, false, err
		}
		if primary {
			t.PrimaryKey = strings.Split(cols, ",")
		} else {
			t.Unique = append(t.Unique, strings.Split(cols, ","))
		}
	}
	if err := closeRows(rows); err != nil {
		return t, false, err
	}
	rows, err = db.QueryContext(ctx, `
SELECT cl.relname, c.confdeltype,
       array_to_string(array(
         SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY k(num, ord)
         JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.num
         ORDER BY k.ord), ','),
       array_to_string(array(
         SELECT a.attname FROM unnest(c.confkey) WITH ORDINALITY k(num, ord)
         JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.num
         ORDER BY k.ord), ',')
FROM pg_constraint c JOIN pg_class cl ON cl.oid = c.confrelid
WHERE c.conrelid = to_regclass($1) AND c.contype = 'f'`, name)
	if err != nil {
		return t, false, err
	}
	for rows.Next() {
		var fk ForeignKey
		var action, cols, refs string
		if err := rows.Scan(&fk.RefTable, &action, &cols, &refs); err != nil {
			rows.Close()
			return t, false, err
		}
		fk.Columns, fk.RefColumns = strings.Split(cols, ","), strings.Split(refs, ",")
		fk.OnDelete = map[string]string{"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}[action]
		t.ForeignKeys = append(t.ForeignKeys, fk)
	}
	return t, true, closeRows(rows)
}

// mysqlDescriber reads information_schema of the current database. MySQL 8
// and MariaDB differ in how they show types and defaults; normalisation
// below makes them agree.
type mysqlDescriber struct{}

// intWidth matches the display width MariaDB and MySQL 5 print after
// integer types: bigint(20), int(11).
var intWidth = regexp.MustCompile(`^(tinyint|smallint|mediumint|int|bigint)\(\d+\)`)

func (mysqlDescriber) table(ctx context.Context, db *sql.DB, name string) (Table, bool, error) {
	t := Table{Name: name}
	rows, err := db.QueryContext(ctx, `
SELECT COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE = 'YES', COLUMN_DEFAULT, EXTRA LIKE '%auto_increment%'
FROM information_schema.COLUMNS
WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?
ORDER BY ORDINAL_POSITION`, name)
	if err != nil {
		return t, false, err
	}
	for rows.Next() {
		var c Column
		var def sql.NullString
		if err := rows.Scan(&c.Name, &c.Type, &c.Nullable, &def, &c.Auto); err != nil {
			rows.Close()
			return t, false, err
		}
		c.Type = intWidth.ReplaceAllString(strings.ToLower(c.Type), "$1")
		if c.Type == "int" {
			c.Type = "integer"
		}
		// MariaDB shows no default as the string NULL and quotes string
		// literals; MySQL shows SQL NULL and no quotes.
		if def.Valid && def.String != "NULL" {
			c.Default = strings.Trim(def.String, "'")
		}
		t.Columns = append(t.Columns, c)
	}
	if err := closeRows(rows); err != nil || len(t.Columns) == 0 {
		return t, false, err
	}
	rows, err = db.QueryContext(ctx, `
SELECT s.INDEX_NAME = 'PRIMARY', GROUP_CONCAT(s.COLUMN_NAME ORDER BY s.SEQ_IN_INDEX SEPARATOR ',')
FROM information_schema.STATISTICS s
WHERE s.TABLE_SCHEMA = DATABASE() AND s.TABLE_NAME = ? AND s.NON_UNIQUE = 0
GROUP BY s.INDEX_NAME`, name)
	if err != nil {
		return t, false, err
	}
	for rows.Next() {
		var primary bool
		var cols string
		if err := rows.Scan(&primary, &cols); err != nil {
			rows.Close()
			return t, false, err
		}
		if primary {
			t.PrimaryKey = strings.Split(cols, ",")
		} else {
			t.Unique = append(t.Unique, strings.Split(cols, ","))
		}
	}
	if err := closeRows(rows); err != nil {
		return t, false, err
	}
	rows, err = db.QueryContext(ctx, `
SELECT k.REFERENCED_TABLE_NAME, r.DELETE_RULE,
       GROUP_CONCAT(k.COLUMN_NAME ORDER BY k.ORDINAL_POSITION SEPARATOR ','),
       GROUP_CONCAT(k.REFERENCED_COLUMN_NAME ORDER BY k.ORDINAL_POSITION SEPARATOR ',')
FROM information_schema.KEY_COLUMN_USAGE k
JOIN information_schema.REFERENTIAL_CONSTRAINTS r
  ON r.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA AND r.CONSTRAINT_NAME = k.CONSTRAINT_NAME AND r.TABLE_NAME = k.TABLE_NAME
WHERE k.TABLE_SCHEMA = DATABASE() AND k.TABLE_NAME = ? AND k.REFERENCED_TABLE_NAME IS NOT NULL
GROUP BY k.CONSTRAINT_NAME, k.REFERENCED_TABLE_NAME, r.DELETE_RULE`, name)
	if err != nil {
		return t, false, err
	}
	for rows.Next() {
		var fk ForeignKey
		var cols, refs string
		if err := rows.Scan(&fk.RefTable, &fk.OnDelete, &cols, &refs); err != nil {
			rows.Close()
			return t, false, err
		}
		fk.Columns, fk.RefColumns = strings.Split(cols, ","), strings.Split(refs, ",")
		fk.OnDelete = strings.ToUpper(fk.OnDelete)
		t.ForeignKeys = append(t.ForeignKeys, fk)
	}
	return t, true, closeRows(rows)
}

// sqliteDescriber reads the table-valued pragma functions (SQLite 3.16+).
type sqliteDescriber struct{}

// sqliteIntTypes are the declared types SQLite gives INTEGER affinity and
// stores identically; GORM and hand DDL spell them differently.
var sqliteIntTypes = map[string]bool{"integer": true, "int": true, "bigint": true, "smallint": true, "tinyint": true, "mediumint": true, "int8": true}

func (sqliteDescriber) table(ctx context.Context, db *sql.DB, name string) (Table, bool, error) {
	t := Table{Name: name}
	rows, err := db.QueryContext(ctx, `SELECT name, type, "notnull", coalesce(dflt_value, ''), pk FROM pragma_table_info(?) ORDER BY cid`, name)
	if err != nil {
		return t, false, err
	}
	type pkCol struct {
		name string
		pos  int
		typ  string
	}
	var pks []pkCol
	for rows.Next() {
		var c Column
		var notNull bool
		var pk int
		if err := rows.Scan(&c.Name, &c.Type, &notNull, &c.Default, &pk); err != nil {
			rows.Close()
			return t, false, err
		}
		c.Type = strings.ToLower(c.Type)
		if sqliteIntTypes[c.Type] {
			c.Type = "integer"
		}
		c.Nullable = !notNull
		c.Default = strings.Trim(c.Default, "'")
		if pk > 0 {
			pks = append(pks, pkCol{c.Name, pk, c.Type})
		}
		t.Columns = append(t.Columns, c)
	}
	if err := closeRows(rows); err != nil || len(t.Columns) == 0 {
		return t, false, err
	}
	slices.SortFunc(pks, func(a, b pkCol) int { return a.pos - b.pos })
	for _, p := range pks {
		t.PrimaryKey = append(t.PrimaryKey, p.name)
	}
	// A single INTEGER PRIMARY KEY is the rowid: generated, and never NULL
	// even though the pragma reports it nullable unless declared NOT NULL.
	if len(pks) == 1 && pks[0].typ == "integer" {
		for i := range t.Columns {
			if t.Columns[i].Name == pks[0].name {
				t.Columns[i].Auto, t.Columns[i].Nullable = true, false
			}
		}
	}
	// Columns of a composite primary key: SQLite (unlike the others) lets
	// them hold NULL unless declared NOT NULL, so the pragma tells the truth
	// and nothing is normalised.

	rows, err = db.QueryContext(ctx, `SELECT name, origin FROM pragma_index_list(?) WHERE "unique" AND NOT partial`, name)
	if err != nil {
		return t, false, err
	}
	var uniq []string
	for rows.Next() {
		var idx, origin string
		if err := rows.Scan(&idx, &origin); err != nil {
			rows.Close()
			return t, false, err
		}
		if origin != "pk" {
			uniq = append(uniq, idx)
		}
	}
	if err := closeRows(rows); err != nil {
		return t, false, err
	}
	for _, idx := range uniq {
		cols, err := sqliteIndexColumns(ctx, db, idx)
		if err != nil {
			return t, false, err
		}
		t.Unique = append(t.Unique, cols)
	}

	rows, err = db.QueryContext(ctx, `SELECT id, "table", "from", "to", on_delete FROM pragma_foreign_key_list(?) ORDER BY id, seq`, name)
	if err != nil {
		return t, false, err
	}
	byID := map[int]int{} // foreign key id -> index in t.ForeignKeys
	for rows.Next() {
		var id int
		var ref, from string
		var to sql.NullString // NULL when the key names the parent's primary key implicitly
		var onDelete string
		if err := rows.Scan(&id, &ref, &from, &to, &onDelete); err != nil {
			rows.Close()
			return t, false, err
		}
		i, ok := byID[id]
		if !ok {
			i = len(t.ForeignKeys)
			byID[id] = i
			t.ForeignKeys = append(t.ForeignKeys, ForeignKey{RefTable: ref, OnDelete: strings.ToUpper(onDelete)})
		}
		t.ForeignKeys[i].Columns = append(t.ForeignKeys[i].Columns, from)
		t.ForeignKeys[i].RefColumns = append(t.ForeignKeys[i].RefColumns, to.String)
	}
	return t, true, closeRows(rows)
}

func sqliteIndexColumns(ctx context.Context, db *sql.DB, idx string) ([]string, error) {
	rows, err := db.QueryContext(ctx, `SELECT name FROM pragma_index_info(?) ORDER BY seqno`, idx)
	if err != nil {
		return nil, err
	}
	var cols []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			rows.Close()
			return nil, err
		}
		cols = append(cols, c)
	}
	return cols, closeRows(rows)
}

// closeRows closes rows and returns the iteration error, if any.
func closeRows(rows *sql.Rows) error {
	err := rows.Err()
	if cerr := rows.Close(); err == nil {
		err = cerr
	}
	return err
}
