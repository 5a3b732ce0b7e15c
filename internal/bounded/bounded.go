// Package bounded is the one home of the size limits on what storepack
// reads whole into memory from files and servers it does not control
// (spec files, storepack.lock, a layout's index.json, base image
// manifests and configs, narinfos, nix-cache-info), and of reading
// files that must be regular: a FIFO or a device (a file linked to
// /dev/zero, say) is refused before it is opened, as it would block or
// never end.
//
// Every limit is far above what a real file of its kind holds: a limit
// only stops hostile or broken input from exhausting memory.
package bounded

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// The limits, in bytes.
const (
	// SpecFile is the largest *.hcl file of a spec.
	SpecFile = 16 << 20
	// LockFile is the largest storepack.lock.
	LockFile = 64 << 20
	// Index is the largest OCI layout index.json, image index or
	// manifest of a base image.
	Index = 4 << 20
	// Config is the largest base image config.
	Config = 16 << 20
	// NarInfo is the largest narinfo.
	NarInfo = 1 << 20
	// CacheInfo is the largest nix-cache-info.
	CacheInfo = 64 << 10
	// LayerExpansion is how many times its compressed size a base
	// layer's tar may be, and LayerSlack the bytes any layer may hold
	// above that (a layer of little data but many empty files): a
	// compressed stream that expands past it is stopped.
	LayerExpansion = 1024
	LayerSlack     = 1 << 30
)

// ErrTooLarge is wrapped by the errors of what is larger than its limit.
var ErrTooLarge = errors.New("too large")

// ErrNotRegular is wrapped by the errors of files that are not regular
// files (folders, FIFOs, devices, sockets).
var ErrNotRegular = errors.New("not a regular file")

// ReadAll reads r to its end, at most limit bytes: more is an error
// wrapping ErrTooLarge.
func ReadAll(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("more than %d bytes: %w", limit, ErrTooLarge)
	}
	return b, nil
}

// Open opens the regular file name (symbolic links followed): anything
// else is refused, without opening it, with an error wrapping
// ErrNotRegular and naming name.
func Open(name string) (*os.File, error) {
	fi, err := os.Stat(name)
	if err != nil {
		return nil, err
	}
	if err := regular(name, fi.Mode()); err != nil {
		return nil, err
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	// The name may have been replaced between Stat and Open.
	if fi, err = f.Stat(); err == nil {
		err = regular(name, fi.Mode())
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// ReadFile reads the regular file name, of at most limit bytes; its
// errors name the file.
func ReadFile(name string, limit int64) ([]byte, error) {
	f, err := Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > limit {
		return nil, fmt.Errorf("%s: %d bytes, more than %d: %w", name, fi.Size(), limit, ErrTooLarge)
	}
	b, err := ReadAll(f, limit)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return b, nil
}

// regular is nil for a regular file's mode, else an error naming the kind.
func regular(name string, m fs.FileMode) error {
	if m.IsRegular() {
		return nil
	}
	return &fs.PathError{Op: "open", Path: name, Err: fmt.Errorf("%w (%s)", ErrNotRegular, Kind(m))}
}

// Kind names the kind of file of mode m: "a folder", "a FIFO", ...
func Kind(m fs.FileMode) string {
	switch {
	case m.IsRegular():
		return "a regular file"
	case m.IsDir():
		return "a folder"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	}
	return "an irregular file"
}

// Reader reads at most Limit bytes of R: reading more is an error
// wrapping ErrTooLarge, naming What.
type Reader struct {
	R     io.Reader
	Limit int64
	What  string
	n     int64
}

// Read reads from R, failing once more than Limit bytes have come.
func (r *Reader) Read(p []byte) (int, error) {
	if rest := r.Limit - r.n + 1; int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := r.R.Read(p)
	r.n += int64(n)
	if r.n > r.Limit {
		return n, fmt.Errorf("%s: more than %d bytes: %w", r.What, r.Limit, ErrTooLarge)
	}
	return n, err
}

// N is how many bytes have been read.
func (r *Reader) N() int64 { return r.n }
