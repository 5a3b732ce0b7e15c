package export

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/internal/signing"
	"github.com/storepack/storepack/plan"
	"github.com/storepack/storepack/store/binarycache"
	"github.com/storepack/storepack/store/nar"
)

// binaryCacheDef declares the format: a Nix binary cache folder of every system's closure.
var binaryCacheDef = format.Def{Name: "binary-cache", Kind: format.Store,
	Compressions: binarycache.WriteCompressions, CompressionOf: "a binary cache's NARs", SignKey: format.NixKey}

// binaryCacheWriter writes binary-cache exports (package binarycache).
type binaryCacheWriter struct{}

// Def declares the format.
func (binaryCacheWriter) Def() *format.Def { return &binaryCacheDef }

func (binaryCacheWriter) totals(e *plan.Export) (bytes, items int64) { return closureTotals(e, true) }

// tempDirs: binarycache.Write makes each NAR file as ".tmp-*" in nar/.
func (binaryCacheWriter) tempDirs() []string { return []string{"nar"} }

func (binaryCacheWriter) write(j job) (written, error) {
	files, _, err := writeBinaryCache(j.e, j.outDir, j.count)
	return written{files: files}, err
}

// writeBinaryCache writes the closures of every system of e, each item
// once, into the cache folder e.Output inside outDir, the NARs compressed
// as e.Compression says and the narinfos signed with the key file
// e.SignKey, read now, when set (see binarycache.Write: entries already in
// the cache are checked and kept, never rewritten). It returns every file
// of the export's entries, written now or found, sorted by path
// (nix-cache-info, the narinfos and their NAR files), and
// binarycache.Write's result.
func writeBinaryCache(e *plan.Export, outDir string, count nar.Counter) ([]File, *binarycache.Result, error) {
	fail := func(err error) ([]File, *binarycache.Result, error) {
		return nil, nil, err
	}
	var items []binarycache.Item
	for _, sys := range e.Systems {
		for _, it := range sys.Closure {
			bi := binarycache.Item{
				Path: it.Path, NarHash: it.NarHash, NarSize: it.NarSize,
				References: it.References, Deriver: it.Deriver, FSPath: it.FSPath,
			}
			if it.Source != "" {
				// Added like `nix-store --add`: recursive sha256.
				bi.CA = "fixed:r:" + it.NarHash.String()
			}
			items = append(items, bi)
		}
	}
	if len(items) == 0 {
		return fail(fmt.Errorf("no store items to put in the binary cache"))
	}
	opts := binarycache.Options{StoreDir: items[0].Path.Dir(), Compression: string(e.Compression), Counter: count}
	if e.SignKey != "" {
		k, err := signing.ReadSecretKey(e.SignKey)
		if err != nil {
			return fail(err)
		}
		opts.Key = &k
	}
	dir := filepath.Join(outDir, filepath.FromSlash(e.Output))
	res, err := binarycache.Write(dir, items, opts)
	if err != nil {
		return fail(err)
	}
	files, err := cacheFiles(e, dir, res)
	if err != nil {
		return fail(err)
	}
	return files, res, nil
}

// cacheFiles lists the files of the entries of res in the cache folder
// dir, with their digests: read for nix-cache-info and narinfos, taken
// from the narinfo for NARs (FileHash is the file's sha256).
func cacheFiles(e *plan.Export, dir string, res *binarycache.Result) ([]File, error) {
	seen := map[string]bool{}
	var files []File
	add := func(rel string, sum []byte, size int64) {
		if seen[rel] {
			return
		}
		seen[rel] = true
		files = append(files, File{Export: e.Name, Path: path.Join(e.Output, rel), SHA256: hex.EncodeToString(sum), Size: size})
	}
	addRead := func(rel string) error {
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(rel)))
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		add(rel, sum[:], int64(len(b)))
		return nil
	}
	if err := addRead(binarycache.CacheInfoFile); err != nil {
		return nil, err
	}
	for _, en := range res.Entries {
		if err := addRead(en.File); err != nil {
			return nil, err
		}
		add(en.NarInfo.URL, en.NarInfo.FileHash[:], en.NarInfo.FileSize)
	}
	slices.SortFunc(files, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
	return files, nil
}
