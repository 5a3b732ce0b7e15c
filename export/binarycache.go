package export

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
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
// Its output is a folder in the output folder, or an s3:// bucket
// (binarycache.ParseS3URL).
var binaryCacheDef = format.Def{Name: "binary-cache", Kind: format.Store,
	Compressions: binarycache.WriteCompressions, CompressionOf: "a binary cache's NARs", SignKey: format.NixKey,
	RemoteOutput: remoteCache}

// remoteCache reports whether a binary cache's output is an s3:// URL,
// and checks it.
func remoteCache(o string) (bool, error) {
	if !binarycache.IsS3(o) {
		return false, nil
	}
	_, err := binarycache.ParseS3URL(o)
	return true, err
}

// localCache is the folder in outDir where a bucket output is written
// when outputs are kept local (Options.Local): s3/BUCKET/PREFIX.
func localCache(outDir string, loc *binarycache.S3Location) string {
	return filepath.Join(outDir, "s3", loc.Bucket, filepath.FromSlash(loc.Prefix))
}

// binaryCacheWriter writes binary-cache exports (package binarycache).
type binaryCacheWriter struct{}

// Def declares the format.
func (binaryCacheWriter) Def() *format.Def { return &binaryCacheDef }

func (binaryCacheWriter) totals(e *plan.Export) (bytes, items int64) { return closureTotals(e, true) }

// tempDirs: binarycache.Write makes each NAR file as ".tmp-*" in nar/.
func (binaryCacheWriter) tempDirs() []string { return []string{"nar"} }

func (binaryCacheWriter) write(j job) (written, error) {
	files, _, err := writeBinaryCache(j.e, j.outDir, j.count, j.local)
	return written{files: files}, err
}

// writeBinaryCache writes the closures of every system of e, each item
// once, into the cache e.Output: a folder inside outDir, or an s3://
// bucket, the NARs compressed
// as e.Compression says and the narinfos signed with the key file
// e.SignKey, read now, when set (see binarycache.Write: entries already in
// the cache are checked and kept, never rewritten). It returns every file
// of the export's entries, written now or found, sorted by path
// (nix-cache-info, the narinfos and their NAR files), and
// binarycache.Write's result.
//
// With local, a bucket output is written as a folder output instead (in
// outDir, at localCache of the URL), its files named by their s3:// URLs
// as an upload names them: what lock and verify build (Options.Local).
func writeBinaryCache(e *plan.Export, outDir string, count nar.Counter, local bool) ([]File, *binarycache.Result, error) {
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
	var c binarycache.Cache = binarycache.Dir(filepath.Join(outDir, filepath.FromSlash(e.Output)))
	name := func(rel string) string { return path.Join(e.Output, rel) }
	switch {
	case binaryCacheDef.Remote(e.Output) && local:
		loc, err := binarycache.ParseS3URL(e.Output)
		if err != nil {
			return fail(err)
		}
		c, name = binarycache.Dir(localCache(outDir, loc)), loc.Location
	case binaryCacheDef.Remote(e.Output):
		s3, err := binarycache.NewS3(e.Output)
		if err != nil {
			return fail(err)
		}
		c, name = s3, s3.Location
	}
	res, err := binarycache.WriteCache(context.Background(), c, items, opts)
	if err != nil {
		return fail(err)
	}
	return cacheFiles(e, res, name), res, nil
}

// cacheFiles lists the files of the entries of res, with their digests,
// named by name (relative to the output folder, or s3:// URLs): those of
// nix-cache-info and the narinfos from their bytes, those of the NARs
// from the narinfos (FileHash is the file's sha256).
func cacheFiles(e *plan.Export, res *binarycache.Result, name func(rel string) string) []File {
	seen := map[string]bool{}
	var files []File
	add := func(rel string, sum []byte, size int64) {
		if seen[rel] {
			return
		}
		seen[rel] = true
		files = append(files, File{Export: e.Name, Path: name(rel), SHA256: hex.EncodeToString(sum), Size: size})
	}
	addBytes := func(rel string, b []byte) {
		sum := sha256.Sum256(b)
		add(rel, sum[:], int64(len(b)))
	}
	addBytes(binarycache.CacheInfoFile, res.CacheInfo)
	for _, en := range res.Entries {
		addBytes(en.File, en.Text)
		add(en.NarInfo.URL, en.NarInfo.FileHash[:], en.NarInfo.FileSize)
	}
	slices.SortFunc(files, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
	return files
}
