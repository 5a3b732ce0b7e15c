package binarycache

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"path"
	"runtime"
	"slices"
	"sync"

	"golang.org/x/sync/semaphore"

	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/internal/compress"
	"github.com/storepack/storepack/internal/countw"
	"github.com/storepack/storepack/internal/signing"
	"github.com/storepack/storepack/store"
	"github.com/storepack/storepack/store/nar"
)

// Item is a store item to put in a cache.
type Item struct {
	// Path is its store path.
	Path store.Path
	// NarHash and NarSize are those of its NAR serialisation, as the
	// store records them; Write checks the NAR it makes against them.
	NarHash store.Hash
	NarSize int64
	// References are the items it refers to (full paths, itself included
	// when it refers to itself).
	References []store.Path
	// Deriver is the derivation that built it (full path or base name),
	// or "".
	Deriver string
	// CA is its content address, or "".
	CA string
	// FSPath is where its files are read from (its store path, or a
	// local copy).
	FSPath string
}

// Options are the settings of Write.
type Options struct {
	// StoreDir is the store folder of the items, written in
	// nix-cache-info and checked against an existing one.
	StoreDir store.Dir
	// Compression is CompressionXZ (the default, as Nix), CompressionZstd
	// or CompressionNone.
	Compression string
	// Key signs every narinfo written; nil writes them unsigned.
	Key *signing.SecretKey
	// Jobs is how many NARs are made at once; 0 means GOMAXPROCS.
	Jobs int
	// Counter, when not nil, counts each distinct item once its NAR is
	// made or its narinfo found, and the NARs' bytes as they are read.
	Counter nar.Counter
}

// Entry is one item's entry in the cache after Write.
type Entry struct {
	// NarInfo is the item's narinfo: the one written, or the one found.
	NarInfo *NarInfo
	// File is the narinfo file, relative to the cache folder.
	File string
	// Text is the narinfo file's bytes.
	Text []byte
	// Written is true when Write wrote the narinfo; false when it was
	// already there.
	Written bool
	// Differs is true when the narinfo found holds another NAR hash or
	// size than the item's (a different build of the same path): it is
	// kept, as Nix keeps the first copy of a path.
	Differs bool
}

// Result tells what Write did.
type Result struct {
	// Entries are the items' entries, in the order of the items given
	// (each path once).
	Entries []Entry
	// Written are the files written, relative to the cache folder, with
	// forward slashes, sorted.
	Written []string
	// Skipped counts the items whose narinfo was already in the cache.
	Skipped int
	// CacheInfo is the bytes of the cache's nix-cache-info.
	CacheInfo []byte
}

// Write adds items to the binary cache folder dir, which is created when
// missing: WriteCache of Dir(dir).
func Write(dir string, items []Item, opts Options) (*Result, error) {
	return WriteCache(context.Background(), Dir(dir), items, opts)
}

// WriteCache adds items (a closure: each item's references must be among
// the items or already in the cache) to the binary cache c. It writes
// nix-cache-info when missing (an existing one must name opts.StoreDir),
// and for each item whose <hashpart>.narinfo is missing, its NAR file,
// then its narinfo. An existing narinfo is parsed and checked (its store
// path, its NAR file's presence and size) and never rewritten; a corrupt
// one is an error naming it. NARs are made with nar.Dump, streamed
// through the compressor into the cache (c.CreateNAR: a temporary file,
// or an upload) while the NAR and the file are hashed, so memory does not
// grow with an item's size; a NAR whose hash or size differs from the
// item's is an error (the store changed). Narinfos are written only once
// every NAR file is in place, each after those of its references
// (publishAll), so the cache is valid at every moment: when a NAR fails,
// no narinfo (nor a missing nix-cache-info) is written and the NAR files
// this run added are removed; when a narinfo fails, no other is started,
// those written stay, and a new Write completes the cache.
func WriteCache(ctx context.Context, c Cache, items []Item, opts Options) (*Result, error) {
	if opts.Counter == nil {
		opts.Counter = nar.Discard
	}
	if opts.Compression == "" {
		opts.Compression = CompressionXZ
	}
	if comp, err := newCompressor(opts.Compression, io.Discard, 0); err != nil {
		return nil, fmt.Errorf("binary cache %s: %w", c, err)
	} else {
		comp.Close()
	}
	if _, err := store.ParseDir(string(opts.StoreDir)); err != nil {
		return nil, fmt.Errorf("binary cache %s: %w", c, err)
	}
	unique, err := checkItems(items, opts.StoreDir)
	if err != nil {
		return nil, fmt.Errorf("binary cache %s: %w", c, err)
	}
	if err := c.Prepare(ctx); err != nil {
		return nil, err
	}
	// Check an existing nix-cache-info before the work; write a missing
	// one only once every NAR is in place.
	info, _, err := writeCacheInfo(ctx, c, opts.StoreDir, false)
	if err != nil {
		return nil, err
	}
	if err := checkClosed(ctx, c, unique); err != nil {
		return nil, fmt.Errorf("binary cache %s: %w", c, err)
	}
	res := &Result{Entries: make([]Entry, len(unique)), CacheInfo: info}
	// The narinfos the cache surely lacks need not be asked for.
	var absent map[string]bool
	if l, ok := c.(absentLister); ok {
		names := make([]string, len(unique))
		for i, it := range unique {
			names[i] = NarInfoFile(it.Path)
		}
		absent = l.Absent(ctx, names)
	}

	// First every NAR file, several at once; then the narinfos, each
	// once those of its references are in place (publishAll).
	jobs := opts.Jobs
	if jobs <= 0 {
		jobs = runtime.GOMAXPROCS(0)
	}
	jobs = min(jobs, max(len(unique), 1))
	var (
		errs    = make([]error, len(unique))
		pending = make([]pendingItem, len(unique))
		next    = make(chan int)
		wg      sync.WaitGroup
		stopped = make(chan struct{})
		stop    sync.Once
	)
	// The compressors running at once share a memory budget: two xz
	// encoders of 4 MiB NARs would take 72 MiB, so large xz NARs go one
	// at a time, while small ones and zstd's run GOMAXPROCS at once.
	budget := semaphore.NewWeighted(encoderBudget)
	for range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				w := min(compress.EncoderMemory(format.Compression(opts.Compression), compress.Options{Size: unique[i].NarSize}), encoderBudget)
				budget.Acquire(context.Background(), w)
				pi, err := prepareItem(ctx, c, &unique[i], opts.Compression, opts.Counter, absent[NarInfoFile(unique[i].Path)])
				budget.Release(w)
				if err != nil {
					errs[i] = err
					stop.Do(func() { close(stopped) })
					continue
				}
				pending[i] = pi
			}
		}()
	}
feed:
	for i := range unique {
		select {
		case next <- i:
		case <-stopped:
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		// Publish nothing: take back the NAR files this run added.
		for _, pi := range pending {
			if pi.narWritten {
				c.Remove(context.WithoutCancel(ctx), pi.ni.URL)
			}
		}
		return res, err
	}
	info, wrote, err := writeCacheInfo(ctx, c, opts.StoreDir, true)
	if err != nil {
		return nil, err
	}
	res.CacheInfo = info
	if wrote {
		res.Written = append(res.Written, CacheInfoFile)
	}
	if err := publishAll(ctx, c, unique, pending, &opts, res); err != nil {
		slices.Sort(res.Written)
		return res, err
	}
	slices.Sort(res.Written)
	// Two items with the same NAR may both have written its file.
	res.Written = slices.Compact(res.Written)
	for _, e := range res.Entries {
		if !e.Written {
			res.Skipped++
		}
	}
	return res, nil
}

// narinfoJobs is how many narinfos are written at once: each is a
// request or two (S3) or a file synced (a folder), waiting more than
// working.
const narinfoJobs = 16

// publishAll writes the narinfos of the prepared items, narinfoJobs at
// once, each once those of the earlier items it refers to are written
// (the items come dependencies first), so that a narinfo is never
// published before those of its references. The entries and the files
// written go into res; after a failure no further narinfo is started, and
// those written stay (a new Write completes the cache).
func publishAll(ctx context.Context, c Cache, items []Item, pending []pendingItem, opts *Options, res *Result) error {
	index := make(map[store.Path]int, len(items))
	for i, it := range items {
		index[it.Path] = i
	}
	var (
		done   = make([]chan struct{}, len(items)) // closed once the narinfo is in place
		errs   = make([]error, len(items))
		files  = make([][]string, len(items))
		failed = make(chan struct{})
		fail   sync.Once
		slots  = semaphore.NewWeighted(narinfoJobs)
		wg     sync.WaitGroup
	)
	for i := range done {
		done[i] = make(chan struct{})
	}
	for i := range items {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, r := range items[i].References {
				if j, ok := index[r]; ok && j < i {
					select {
					case <-done[j]:
					case <-failed:
						return
					}
				}
			}
			slots.Acquire(context.Background(), 1)
			defer slots.Release(1)
			select {
			case <-failed:
				return
			default:
			}
			e, f, err := publishItem(ctx, c, &items[i], &pending[i], opts)
			files[i] = f
			if err != nil {
				errs[i] = err
				fail.Do(func() { close(failed) })
				return
			}
			res.Entries[i] = e
			close(done[i])
		}()
	}
	wg.Wait()
	for _, f := range files {
		res.Written = append(res.Written, f...)
	}
	return errors.Join(errs...)
}

// checkItems validates the items and drops repeated paths (a path in
// several systems' closures); the same path with two NAR hashes is an
// error.
func checkItems(items []Item, dir store.Dir) ([]Item, error) {
	seen := map[store.Path]int{}
	var out []Item
	for _, it := range items {
		if _, err := dir.Parse(string(it.Path)); err != nil {
			return nil, err
		}
		if it.NarSize <= 0 {
			return nil, fmt.Errorf("%s: NAR size %d is not positive", it.Path, it.NarSize)
		}
		for _, r := range it.References {
			if _, err := dir.Parse(string(r)); err != nil {
				return nil, fmt.Errorf("%s: reference: %w", it.Path, err)
			}
		}
		if i, ok := seen[it.Path]; ok {
			if out[i].NarHash != it.NarHash || out[i].NarSize != it.NarSize {
				return nil, fmt.Errorf("%s is given twice, with NAR hashes %s and %s", it.Path, out[i].NarHash, it.NarHash)
			}
			continue
		}
		seen[it.Path] = len(out)
		out = append(out, it)
	}
	return out, nil
}

// checkClosed checks that every reference of the items is one of them or
// already has a narinfo in c: Nix cannot substitute an item whose
// references it cannot find.
func checkClosed(ctx context.Context, c Cache, items []Item) error {
	have := map[store.Path]bool{}
	for _, it := range items {
		have[it.Path] = true
	}
	for _, it := range items {
		for _, r := range it.References {
			if have[r] {
				continue
			}
			if _, err := c.Size(ctx, NarInfoFile(r)); errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("%s refers to %s, which is neither among the items written nor in the cache", it.Path, r)
			} else if err != nil {
				return err
			}
			have[r] = true
		}
	}
	return nil
}

// writeCacheInfo checks an existing nix-cache-info and, when write is set,
// writes a missing one. It returns the file's bytes (nil when there is
// none and write is not set) and whether it wrote them.
func writeCacheInfo(ctx context.Context, c Cache, storeDir store.Dir, write bool) ([]byte, bool, error) {
	b, err := readSmall(ctx, c, CacheInfoFile)
	if err != nil {
		return nil, false, fmt.Errorf("binary cache %s: %w", c, err)
	}
	if b != nil {
		ci, err := ParseCacheInfo(b)
		if err != nil {
			return nil, false, fmt.Errorf("corrupt %s: %w", c.Location(CacheInfoFile), err)
		}
		if ci.StoreDir != storeDir {
			return nil, false, fmt.Errorf("%s: the cache holds paths of the store %s, not %s", c.Location(CacheInfoFile), ci.StoreDir, storeDir)
		}
		return b, false, nil
	}
	if !write {
		return nil, false, nil
	}
	text, err := (&CacheInfo{StoreDir: storeDir, WantMassQuery: 1, Priority: DefaultPriority}).MarshalText()
	if err != nil {
		return nil, false, err
	}
	created, err := c.PutNew(ctx, CacheInfoFile, text)
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", c.Location(CacheInfoFile), err)
	}
	if !created {
		// Another writer made it meanwhile: check theirs.
		return writeCacheInfo(ctx, c, storeDir, false)
	}
	return text, true, nil
}

// pendingItem is an item whose NAR file is in place (or whose narinfo
// was found) and whose narinfo is yet to be written.
type pendingItem struct {
	existing   *NarInfo // the narinfo already in the cache, or nil
	text       []byte   // existing's bytes
	ni         *NarInfo // the narinfo to write
	narWritten bool     // whether this run wrote ni's NAR file
}

// prepareItem reads the item's narinfo when the cache has it, else writes
// its NAR file. absent tells that the cache is known to lack the
// narinfo: it is not asked for.
func prepareItem(ctx context.Context, c Cache, it *Item, compression string, cnt nar.Counter, absent bool) (pendingItem, error) {
	if !absent {
		ni, text, err := readExisting(ctx, c, it.Path)
		if err != nil {
			return pendingItem{}, err
		}
		if ni != nil {
			cnt.Done(1, it.NarSize)
			return pendingItem{existing: ni, text: text}, nil
		}
	}
	ni, narWritten, err := writeNAR(ctx, c, it, compression, cnt)
	if err != nil {
		return pendingItem{}, err
	}
	cnt.Done(1, 0)
	return pendingItem{ni: ni, narWritten: narWritten}, nil
}

// publishItem writes the narinfo of a prepared item. It returns the
// item's entry and the files written (relative, slashes).
func publishItem(ctx context.Context, c Cache, it *Item, pi *pendingItem, opts *Options) (Entry, []string, error) {
	rel := NarInfoFile(it.Path)
	e := Entry{File: rel}
	if pi.existing != nil {
		e.NarInfo, e.Text = pi.existing, pi.text
		e.Differs = pi.existing.NarHash != it.NarHash || pi.existing.NarSize != it.NarSize
		return e, nil, nil
	}
	ni := pi.ni
	var files []string
	if pi.narWritten {
		files = append(files, ni.URL)
	}
	if opts.Key != nil {
		ni.Sigs = []string{opts.Key.Sign(ni.Fingerprint())}
	}
	text, err := ni.MarshalText()
	if err != nil {
		return e, files, fmt.Errorf("%s: %w", it.Path, err)
	}
	if created, err := c.PutNew(ctx, rel, text); err != nil {
		return e, files, fmt.Errorf("%s: %s: %w", it.Path, c.Location(rel), err)
	} else if !created {
		// Another writer added it since we looked: keep theirs.
		theirs, text, err := readExisting(ctx, c, it.Path)
		if err != nil {
			return e, files, err
		}
		if theirs == nil {
			return e, files, fmt.Errorf("%s: %s vanished while it was written", it.Path, c.Location(rel))
		}
		e.NarInfo, e.Text = theirs, text
		e.Differs = theirs.NarHash != it.NarHash || theirs.NarSize != it.NarSize
		return e, files, nil
	}
	e.NarInfo, e.Text, e.Written = ni, text, true
	return e, append(files, rel), nil
}

// readExisting reads and checks the narinfo of p when c has one: it must
// parse, be about p, and its NAR file must exist with its FileSize. It
// returns nil when there is none.
func readExisting(ctx context.Context, c Cache, p store.Path) (*NarInfo, []byte, error) {
	rel := NarInfoFile(p)
	b, err := readSmall(ctx, c, rel)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", p, err)
	} else if b == nil {
		return nil, nil, nil
	}
	file := c.Location(rel)
	ni, err := ParseNarInfo(b)
	if err != nil {
		return nil, nil, fmt.Errorf("corrupt cache entry %s: %w", file, err)
	}
	if ni.StorePath != p {
		return nil, nil, fmt.Errorf("corrupt cache entry %s: it is about %s, not %s", file, ni.StorePath, p)
	}
	size, err := c.Size(ctx, ni.URL)
	switch {
	case err != nil:
		return nil, nil, fmt.Errorf("corrupt cache entry %s: its NAR file: %w", file, err)
	case size != ni.FileSize:
		return nil, nil, fmt.Errorf("corrupt cache entry %s: its NAR file %s has %d bytes, FileSize says %d", file, ni.URL, size, ni.FileSize)
	}
	return ni, b, nil
}

// encoderBudget bounds the memory of the NAR compressors running at once
// (compress.EncoderMemory), so that an export stays within a small,
// fixed footprint whatever the NARs' sizes and compression.
const encoderBudget = 40 << 20

// writeNAR makes the compressed NAR of it in c's nar/ and returns its
// narinfo (unsigned) and whether the NAR file was written (false when a
// file of that name, hence those bytes, was already there).
func writeNAR(ctx context.Context, c Cache, it *Item, compression string, cnt nar.Counter) (*NarInfo, bool, error) {
	out, err := c.CreateNAR(ctx, it, compression)
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", it.Path, err)
	}
	defer out.Abort()
	fileHash := sha256.New()
	file := &countw.Writer{W: io.MultiWriter(out, fileHash)}
	comp, err := newCompressor(compression, file, it.NarSize)
	if err != nil {
		return nil, false, err
	}
	narHash := sha256.New()
	narCount := &countw.Writer{W: io.MultiWriter(comp, narHash)}
	if _, err := nar.DumpCounting(narCount, it.FSPath, cnt); err != nil {
		return nil, false, fmt.Errorf("%s: %w", it.Path, err)
	}
	got := sum(narHash)
	if got != it.NarHash || narCount.N != it.NarSize {
		return nil, false, fmt.Errorf("%s (read from %s) has NAR hash %s and size %d, but the store records %s and %d: it changed since the plan was made",
			it.Path, it.FSPath, got, narCount.N, it.NarHash, it.NarSize)
	}
	if err := comp.Close(); err != nil {
		return nil, false, fmt.Errorf("%s: compressing: %w", it.Path, err)
	}
	fh := sum(fileHash)
	url := path.Join("nar", store.Encode32(fh[:])+narExt(compression))
	ni := &NarInfo{
		StorePath:   it.Path,
		URL:         url,
		Compression: compression,
		FileHash:    fh,
		FileSize:    file.N,
		NarHash:     got,
		NarSize:     narCount.N,
		References:  sortedRefs(it.References),
		CA:          it.CA,
	}
	if it.Deriver != "" {
		ni.Deriver = it.Path.Dir().Join(path.Base(it.Deriver))
	}
	written, err := out.Commit(ctx, url, file.N)
	if err != nil {
		return nil, false, fmt.Errorf("%s: %s: %w", it.Path, c.Location(url), err)
	}
	return ni, written, nil
}

// sortedRefs is refs sorted, without repeats.
func sortedRefs(refs []store.Path) []store.Path {
	out := slices.Clone(refs)
	slices.Sort(out)
	return slices.Compact(out)
}

func sum(h hash.Hash) (out store.Hash) {
	h.Sum(out[:0])
	return out
}
