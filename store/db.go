package store

import (
	"bytes"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver
)

// busyTimeout is how long a query waits for a writer's lock.
const busyTimeout = 10 * time.Second

// sqliteMagic starts every SQLite database file.
const sqliteMagic = "SQLite format 3\x00"

// database is a store database (Nix's or Guix's db.sqlite) opened strictly
// read-only.
//
// A WAL-mode database (Nix's default) whose -wal file exists is in use by a
// writer (or was left by one): it is opened with mode=ro and normal locking,
// which reads what the writer committed and needs no write access to the
// database or its folder. A WAL-mode database without a -wal file cannot
// be opened that way without creating -wal and -shm files next to it (which
// fails in a folder we cannot write, and leaves litter where we can), so it
// is opened with immutable=1. Before every query the files are checked
// again: when a -wal file appears, or the database file changes, the
// connection is replaced, so the immutable view never outlives the file
// it describes. A rollback-journal database is opened with mode=ro.
type database struct {
	path string

	mu        sync.Mutex
	db        *sql.DB
	immutable bool
	stamp     fileStamp // the database file when opened immutable
}

// fileStamp identifies a version of a file.
type fileStamp struct {
	size  int64
	mtime time.Time
	ino   uint64
}

func stampOf(fi fs.FileInfo) fileStamp {
	return fileStamp{size: fi.Size(), mtime: fi.ModTime(), ino: inode(fi)}
}

// openDB opens the store database at path read-only and checks its schema.
func openDB(path string) (*database, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("store database %s: %w", path, err)
	}
	d := &database{path: path}
	if err := d.connect(abs); err != nil {
		return nil, err
	}
	if err := d.checkSchema(); err != nil {
		d.close()
		return nil, err
	}
	return d, nil
}

// connect (re)opens the connection; d.mu must be held or d unshared.
func (d *database) connect(abs string) error {
	// Stat before opening: opening a FIFO would block until it has a
	// writer.
	if fi, err := os.Stat(abs); err != nil {
		return fmt.Errorf("store database %s: %w", d.path, bare(err))
	} else if !fi.Mode().IsRegular() {
		return fmt.Errorf("store database %s: not a regular file", d.path)
	}
	f, err := os.Open(abs)
	if err != nil {
		return fmt.Errorf("store database %s: %w", d.path, bare(err))
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("store database %s: %w", d.path, bare(err))
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return fmt.Errorf("store database %s: not a regular file", d.path)
	}
	var hdr [20]byte
	n, err := io.ReadFull(f, hdr[:])
	f.Close()
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return fmt.Errorf("store database %s: %w", d.path, bare(err))
	}
	if n < len(hdr) || !bytes.HasPrefix(hdr[:], []byte(sqliteMagic)) {
		return fmt.Errorf("store database %s: not a store database: not an SQLite database file", d.path)
	}
	wal := hdr[18] == 2 || hdr[19] == 2
	immutable := false
	if wal {
		if _, err := os.Lstat(abs + "-wal"); errors.Is(err, fs.ErrNotExist) {
			immutable = true
		}
	}
	params := "mode=ro&_pragma=query_only(1)&_pragma=busy_timeout(" + fmt.Sprint(busyTimeout.Milliseconds()) + ")"
	if immutable {
		params += "&immutable=1"
	}
	db, err := sql.Open("sqlite", sqliteURI(abs)+"?"+params)
	if err != nil {
		return fmt.Errorf("store database %s: %w", d.path, err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	if err := db.Ping(); err != nil {
		db.Close()
		return d.queryError(err)
	}
	if d.db != nil {
		d.db.Close()
	}
	d.db, d.immutable, d.stamp = db, immutable, stampOf(fi)
	return nil
}

// sqliteURI makes an SQLite URI filename for an absolute path, escaping
// what URIs reserve.
func sqliteURI(abs string) string {
	var b strings.Builder
	b.WriteString("file:")
	for i := 0; i < len(abs); i++ {
		c := abs[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			strings.IndexByte("/-._~+,;=:@", c) >= 0:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// fresh replaces an immutable connection whose file has changed or gained
// a writer; d.mu must be held.
func (d *database) fresh() error {
	if !d.immutable {
		return nil
	}
	abs, err := filepath.Abs(d.path)
	if err != nil {
		return fmt.Errorf("store database %s: %w", d.path, err)
	}
	_, werr := os.Lstat(abs + "-wal")
	fi, err := os.Stat(abs)
	if err != nil {
		return fmt.Errorf("store database %s: %w", d.path, bare(err))
	}
	if werr == nil || stampOf(fi) != d.stamp {
		return d.connect(abs)
	}
	return nil
}

// checkSchema makes sure the file is a store database.
func (d *database) checkSchema() error {
	want := map[string][]string{
		"ValidPaths": {"id", "path", "hash", "registrationTime", "deriver", "narSize"},
		"Refs":       {"referrer", "reference"},
	}
	for _, table := range []string{"ValidPaths", "Refs"} {
		rows, err := d.db.Query("SELECT name FROM pragma_table_info(?)", table)
		if err != nil {
			return d.queryError(err)
		}
		have := map[string]bool{}
		for rows.Next() {
			var name string
			if err := rows.Scan(&name); err != nil {
				rows.Close()
				return d.queryError(err)
			}
			have[strings.ToLower(name)] = true
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return d.queryError(err)
		}
		if len(have) == 0 {
			return fmt.Errorf("store database %s: not a store database: it has no %s table", d.path, table)
		}
		for _, c := range want[table] {
			if !have[strings.ToLower(c)] {
				return fmt.Errorf("store database %s: not a store database: table %s has no column %s", d.path, table, c)
			}
		}
	}
	return nil
}

// queryError explains a failed query.
func (d *database) queryError(err error) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "file is not a database"):
		return fmt.Errorf("store database %s: not a store database: not an SQLite database file (%v)", d.path, err)
	case strings.Contains(msg, "malformed"), strings.Contains(msg, "corrupt"):
		return fmt.Errorf("store database %s: corrupt: %w", d.path, err)
	case strings.Contains(msg, "SQLITE_BUSY"), strings.Contains(msg, "database is locked"):
		return fmt.Errorf("store database %s: locked by a writer for more than %v (is a Nix or Guix daemon or build holding it?): %w", d.path, busyTimeout, err)
	}
	return fmt.Errorf("store database %s: cannot be read: %w", d.path, err)
}

// info reads p's row and references.
func (d *database) info(p Path) (*PathInfo, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.fresh(); err != nil {
		return nil, err
	}
	var (
		id      int64
		hash    string
		deriver sql.NullString
		narSize sql.NullInt64
	)
	err := d.db.QueryRow("SELECT id, hash, deriver, narSize FROM ValidPaths WHERE path = ?", string(p)).
		Scan(&id, &hash, &deriver, &narSize)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%s: not a valid path in the store database %s", p, d.path)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, d.queryError(err))
	}
	info := &PathInfo{Path: p, Deriver: deriver.String}
	if narSize.Valid && narSize.Int64 > 0 {
		sum, err := parseNarHash(hash)
		if err != nil {
			return nil, fmt.Errorf("%s: in the store database %s: %w", p, d.path, err)
		}
		info.NarHash, info.NarSize = sum, narSize.Int64
	}
	rows, err := d.db.Query("SELECT v.path FROM Refs r JOIN ValidPaths v ON v.id = r.reference WHERE r.referrer = ?", id)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, d.queryError(err))
	}
	defer rows.Close()
	refs := []Path{}
	for rows.Next() {
		var r string
		if err := rows.Scan(&r); err != nil {
			return nil, fmt.Errorf("%s: %w", p, d.queryError(err))
		}
		refs = append(refs, Path(r))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", p, d.queryError(err))
	}
	slices.Sort(refs)
	info.References = slices.Compact(refs)
	return info, nil
}

// parseNarHash reads a database hash: "sha256:" and 64 hex digits (what
// Nix and Guix write) or 52 Nix base32 digits.
func parseNarHash(s string) ([]byte, error) {
	h, err := ParseHexHash(s)
	if err != nil {
		if h32, err32 := ParseHash(s); err32 == nil {
			return h32[:], nil
		}
		return nil, fmt.Errorf("NAR %w", err)
	}
	return h[:], nil
}

func (d *database) close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.db == nil {
		return nil
	}
	err := d.db.Close()
	d.db = nil
	return err
}

// bare drops the operation and path from a *fs.PathError about the path
// the caller names anyway.
func bare(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
