// Package substitute reads store items from Nix binary caches when they
// are not in the local store (or there is no local store): each item's
// narinfo (references, deriver, NAR hash and size, compression,
// signatures) from the first cache that has it, its signature checked
// against the trusted keys, and its NAR downloaded, checked against the
// narinfo's NarHash and NarSize as it streams, and unpacked into a folder
// of the storepack cache named by the NAR hash, from which the exports
// read it as they read a store item. Nothing is written to any store.
//
// The caches are Sources (file:// and http(s):// here); downloads run in
// parallel, bounded (Jobs).
package substitute

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/storepack/storepack/internal/atomicfile"
	"github.com/storepack/storepack/internal/bounded"
	"github.com/storepack/storepack/internal/printable"
	"github.com/storepack/storepack/internal/signing"
	"github.com/storepack/storepack/store"
	"github.com/storepack/storepack/store/binarycache"
	"github.com/storepack/storepack/store/nar"
)

// Jobs is the number of NARs downloaded at once.
var Jobs = 4

// Substituter finds store items in binary caches.
type Substituter struct {
	sources  []Source
	keys     []signing.PublicKey
	storeDir store.Dir
	dir      string

	mu       sync.Mutex
	found    map[store.Path]*entry
	infos    map[Source]error  // each cache's nix-cache-info check
	fetching map[string]*fetch // NARs being fetched, by NAR hash
}

// fetch is one NAR being fetched: those who want it too wait for done.
type fetch struct {
	done chan struct{}
	err  error
}

// entry is an item's narinfo and the cache it is from.
type entry struct {
	ni  *binarycache.NarInfo
	src Source
}

// New returns a substituter of the caches urls (in order), trusting
// signatures by keys ("name:base64"), for items of storeDir, unpacking
// into dir.
func New(urls, keys []string, storeDir store.Dir, dir string) (*Substituter, error) {
	s := &Substituter{storeDir: storeDir, dir: dir, found: map[store.Path]*entry{}, infos: map[Source]error{}, fetching: map[string]*fetch{}}
	for _, u := range urls {
		src, err := NewSource(u)
		if err != nil {
			return nil, err
		}
		s.sources = append(s.sources, src)
	}
	for _, k := range keys {
		pk, err := signing.ParsePublicKey(k)
		if err != nil {
			return nil, fmt.Errorf("trusted public key %q: %w", printable.String(k), err)
		}
		s.keys = append(s.keys, pk)
	}
	if len(s.sources) > 0 && len(s.keys) == 0 {
		return nil, errors.New("substituters need trusted_public_keys: storepack takes no unsigned item")
	}
	return s, nil
}

// DefaultDir is where substituted items are unpacked: the storepack cache
// folder's substitutes/.
func DefaultDir() (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("substitutes: %w", err)
	}
	return filepath.Join(base, "storepack", "substitutes"), nil
}

// checkCache reads src's nix-cache-info once: its StoreDir must be the
// store folder.
func (s *Substituter) checkCache(ctx context.Context, src Source) error {
	s.mu.Lock()
	err, done := s.infos[src]
	s.mu.Unlock()
	if done {
		return err
	}
	err = func() error {
		b, err := readSmall(ctx, src, "nix-cache-info", bounded.CacheInfo)
		if err != nil {
			return fmt.Errorf("cache %s: nix-cache-info: %w", src, err)
		}
		ci, err := binarycache.ParseCacheInfo(b)
		if err != nil {
			return fmt.Errorf("cache %s: nix-cache-info: %w", src, err)
		}
		if ci.StoreDir != s.storeDir {
			return fmt.Errorf("cache %s holds items of %s, not %s", src, ci.StoreDir, s.storeDir)
		}
		return nil
	}()
	s.mu.Lock()
	s.infos[src] = err
	s.mu.Unlock()
	return err
}

// Info finds p in the caches, in order: the narinfo of the first that has
// it, whose signature must be by a trusted key (else an error naming the
// item and the cache, and no other cache is asked: a cache that serves a
// bad narinfo is not to be trusted for it).
func (s *Substituter) Info(ctx context.Context, p store.Path) (*store.PathInfo, error) {
	if len(s.sources) == 0 {
		return nil, fmt.Errorf("%s is not in the store, and there are no substituters", p)
	}
	var tried []string
	for _, src := range s.sources {
		if err := s.checkCache(ctx, src); err != nil {
			return nil, err
		}
		ni, err := s.narinfo(ctx, src, p)
		if notFound(err) {
			tried = append(tried, src.String())
			continue
		}
		if err != nil {
			return nil, err
		}
		s.mu.Lock()
		s.found[p] = &entry{ni: ni, src: src}
		s.mu.Unlock()
		return &store.PathInfo{Path: p, NarHash: ni.NarHash[:], NarSize: ni.NarSize, Deriver: string(ni.Deriver), References: ni.References}, nil
	}
	return nil, fmt.Errorf("%s is not in the store, nor in any substituter (%s)", p, strings.Join(tried, ", "))
}

// readSmall reads the file rel of src whole, at most limit bytes (more
// is an error wrapping bounded.ErrTooLarge), trying again when its body
// fails on the way (Attempts in all).
func readSmall(ctx context.Context, src Source, rel string, limit int64) ([]byte, error) {
	for attempt := 1; ; attempt++ {
		rc, err := src.Open(ctx, rel)
		if err != nil {
			return nil, err
		}
		b, err := bounded.ReadAll(rc, limit)
		rc.Close()
		if err == nil || !retryable(err) || attempt >= Attempts {
			return b, err
		}
	}
}

// InfoAll is Info for each of ps, Jobs at a time; the first error stops
// the others. Closure discovery asks it for each level of the closure.
func (s *Substituter) InfoAll(ctx context.Context, ps []store.Path) (map[store.Path]*store.PathInfo, error) {
	out := make(map[store.Path]*store.PathInfo, len(ps))
	var mu sync.Mutex
	err := parallel(ctx, ps, func(ctx context.Context, p store.Path) error {
		info, err := s.Info(ctx, p)
		if err == nil {
			mu.Lock()
			out[p] = info
			mu.Unlock()
		}
		return err
	})
	return out, err
}

// narinfo reads and checks p's narinfo in src.
func (s *Substituter) narinfo(ctx context.Context, src Source, p store.Path) (*binarycache.NarInfo, error) {
	b, err := readSmall(ctx, src, binarycache.NarInfoFile(p), bounded.NarInfo)
	if notFound(err) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("%s in cache %s: %w", p, src, err)
	}
	ni, err := binarycache.ParseNarInfo(b)
	if err != nil {
		return nil, fmt.Errorf("%s in cache %s: %w", p, src, err)
	}
	if ni.StorePath != p {
		return nil, fmt.Errorf("%s in cache %s: the narinfo is for %s", p, src, ni.StorePath)
	}
	fp := ni.Fingerprint()
	for _, k := range s.keys {
		for _, sig := range ni.Sigs {
			if k.Verify(fp, sig) {
				return ni, nil
			}
		}
	}
	if len(ni.Sigs) == 0 {
		return nil, fmt.Errorf("%s in cache %s: the narinfo is not signed; refused", p, src)
	}
	return nil, fmt.Errorf("%s in cache %s: no signature by a trusted key (signed by %s); refused", p, src, signers(ni.Sigs))
}

func signers(sigs []string) string {
	var names []string
	for _, s := range sigs {
		name, _, _ := strings.Cut(s, ":")
		names = append(names, printable.String(name))
	}
	return strings.Join(names, ", ")
}

// Path is where p's files are once fetched: its NAR hash's folder.
func (s *Substituter) Path(info *store.PathInfo) string {
	return filepath.Join(s.dir, hex.EncodeToString(info.NarHash))
}

// FetchAll fetches the items ps (each found by Info before), Jobs at a
// time; the first error stops the others.
func (s *Substituter) FetchAll(ctx context.Context, ps []store.Path) error {
	if len(ps) == 0 {
		return nil
	}
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return fmt.Errorf("substitutes: %w", err)
	}
	unlock, err := useDir(s.dir)
	if err != nil {
		return err
	}
	defer unlock()
	return parallel(ctx, ps, s.Fetch)
}

// parallel runs do for each of ps, Jobs at a time; the first error
// cancels the others' context and is returned.
func parallel(ctx context.Context, ps []store.Path, do func(context.Context, store.Path) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	work := make(chan store.Path)
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	for range min(Jobs, len(ps)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range work {
				if err := do(ctx, p); err != nil {
					once.Do(func() { first = err; cancel() })
				}
			}
		}()
	}
	for _, p := range ps {
		select {
		case work <- p:
		case <-ctx.Done():
		}
	}
	close(work)
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

// Fetch makes p's files available at Path: kept from an earlier fetch, or
// its NAR downloaded, decompressed, unpacked and checked against the
// narinfo's NarHash and NarSize (on a mismatch nothing is kept). A
// download that fails on the way (a connection lost or idle) starts again,
// Attempts times in all. Items with the same NAR share its folder: one
// download in a run, and a folder another run completed first is taken
// (concurrent runs sharing the cache are safe).
func (s *Substituter) Fetch(ctx context.Context, p store.Path) error {
	s.mu.Lock()
	e := s.found[p]
	s.mu.Unlock()
	if e == nil {
		return fmt.Errorf("%s: fetched before its narinfo was read", p)
	}
	key := hex.EncodeToString(e.ni.NarHash[:])
	s.mu.Lock()
	if f := s.fetching[key]; f != nil {
		s.mu.Unlock()
		select {
		case <-f.done:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
		if f.err != nil {
			return f.err
		}
		return nil
	}
	f := &fetch{done: make(chan struct{})}
	s.fetching[key] = f
	s.mu.Unlock()
	f.err = s.fetchOnce(ctx, p, e)
	if f.err != nil {
		// Another caller may try again.
		s.mu.Lock()
		delete(s.fetching, key)
		s.mu.Unlock()
	}
	close(f.done)
	return f.err
}

// fetchOnce downloads and unpacks e's NAR unless its folder is there.
func (s *Substituter) fetchOnce(ctx context.Context, p store.Path, e *entry) error {
	dst := filepath.Join(s.dir, hex.EncodeToString(e.ni.NarHash[:]))
	if _, err := os.Lstat(dst); err == nil {
		return nil
	}
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return fmt.Errorf("substitutes: %w", err)
	}
	what := fmt.Sprintf("%s from cache %s", p, e.src)
	for attempt := 1; ; attempt++ {
		err := s.download(ctx, e, dst)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", what, context.Cause(ctx))
		}
		if !retryable(err) || attempt >= Attempts {
			return fmt.Errorf("%s: %w", what, err)
		}
		if err := sleep(ctx, Backoff); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
}

// download unpacks e's NAR into a temporary folder next to dst, checks it
// and renames it to dst; when another run made dst first, the temporary
// folder is dropped and dst, complete since it is only ever renamed into
// place, is kept. On any error nothing is left.
func (s *Substituter) download(ctx context.Context, e *entry, dst string) error {
	rc, err := e.src.Open(ctx, e.ni.URL)
	if err != nil {
		return fmt.Errorf("its NAR %s: %w", printable.String(e.ni.URL), err)
	}
	defer rc.Close()
	dec, done, err := binarycache.NewDecompressorSize(e.ni.Compression, bufio.NewReaderSize(rc, 1<<20), e.ni.NarSize)
	if err != nil {
		return err
	}
	defer done()
	h := sha256.New()
	cr := &countingReader{r: dec, limit: e.ni.NarSize}
	tee := io.TeeReader(cr, h)
	tmp := atomicfile.TempName(dst)
	if err := unpacking(tmp); err != nil {
		return err
	}
	defer unpacked(tmp)
	if err := nar.Restore(tee, tmp); err != nil {
		removeAll(tmp)
		return err
	}
	// The hash covers the whole NAR: read what Restore left.
	_, err = io.Copy(h, cr)
	if err == nil && (cr.n != e.ni.NarSize || !equal(h.Sum(nil), e.ni.NarHash[:])) {
		err = fmt.Errorf("the NAR is %d bytes of sha256 %x; its narinfo says %d bytes of %s", cr.n, h.Sum(nil), e.ni.NarSize, e.ni.NarHash)
	}
	if err == nil {
		err = os.Rename(tmp, dst)
		if err != nil {
			if _, serr := os.Lstat(dst); serr == nil {
				err = nil // another run's, of the same NAR hash
			}
		}
	}
	// Nothing is left under the temporary name: not on an error, nor
	// when the rename found dst taken.
	removeAll(tmp)
	return err
}

func equal(a, b []byte) bool { return string(a) == string(b) }

// removeAll removes an unpacked item, whose folders are read-only.
func removeAll(p string) { atomicfile.RemoveAll(p) }

// countingReader counts what it reads and fails past limit bytes, so that
// a NAR longer than its narinfo says stops early.
type countingReader struct {
	r     io.Reader
	n     int64
	limit int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.n > c.limit {
		return n, fmt.Errorf("the NAR is longer than the %d bytes its narinfo says", c.limit)
	}
	return n, err
}

// The temporary folders this process is unpacking NARs into, so that an
// interrupt removes them (and only them: other runs may share the
// substitutes folder).
var active struct {
	sync.Mutex
	tmps    map[string]bool
	stopped bool
}

// errInterrupted is the error of unpacking begun after RemoveTemporaries.
var errInterrupted = errors.New("interrupted")

func unpacking(tmp string) error {
	active.Lock()
	defer active.Unlock()
	if active.stopped {
		return errInterrupted
	}
	if active.tmps == nil {
		active.tmps = map[string]bool{}
	}
	active.tmps[tmp] = true
	return nil
}

func unpacked(tmp string) {
	active.Lock()
	delete(active.tmps, tmp)
	active.Unlock()
}

// RemoveTemporaries removes the temporary folders this process is
// unpacking NARs into, and makes every unpacking begun after it fail:
// what an interrupted command calls before it exits, while downloads
// may still be running.
func RemoveTemporaries() {
	active.Lock()
	defer active.Unlock()
	active.stopped = true
	for tmp := range active.tmps {
		removeAll(tmp)
	}
}
