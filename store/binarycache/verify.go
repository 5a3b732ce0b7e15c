package binarycache

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/storepack/storepack/internal/bounded"
	"github.com/storepack/storepack/internal/countw"
	"github.com/storepack/storepack/internal/printable"
	"github.com/storepack/storepack/internal/signing"
	"github.com/storepack/storepack/store"
)

// Verify checks the binary cache folder dir: VerifyCache of Dir(dir).
func Verify(dir string, pub signing.PublicKey) (int, error) {
	return VerifyCache(context.Background(), Dir(dir), pub)
}

// VerifyCache checks the binary cache c against pub and returns how many
// narinfo files it checked. Every <hashpart>.narinfo must parse, be about
// a path of the store nix-cache-info names whose hash part is its file
// name, carry a valid signature by pub (a signature by another key does
// not count), and have a NAR file whose size and sha256 are its FileSize
// and FileHash and whose decompressed bytes have its NarSize and NarHash;
// its references must have narinfos in the cache too. Every problem is
// reported, each naming its file; a cache without narinfo is an error
// too.
func VerifyCache(ctx context.Context, c Reader, pub signing.PublicKey) (int, error) {
	b, err := readFile(ctx, c, CacheInfoFile)
	if err != nil {
		return 0, fmt.Errorf("binary cache %s: %w", c, err)
	}
	ci, err := ParseCacheInfo(b)
	if err != nil {
		return 0, fmt.Errorf("corrupt %s: %w", printable.String(c.Location(CacheInfoFile)), err)
	}
	names, err := c.NarInfos(ctx)
	if err != nil {
		return 0, err
	}
	if len(names) == 0 {
		return 0, fmt.Errorf("binary cache %s holds no .narinfo file", c)
	}
	have := map[string]bool{}
	for _, n := range names {
		have[strings.TrimSuffix(n, ".narinfo")] = true
	}
	var errs []error
	for _, n := range names {
		if err := verifyEntry(ctx, c, n, ci.StoreDir, pub, have); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", printable.String(c.Location(n)), err))
		}
	}
	return len(names), errors.Join(errs...)
}

// verifyEntry checks one narinfo file, name, of the cache c.
func verifyEntry(ctx context.Context, c Reader, name string, storeDir store.Dir, pub signing.PublicKey, have map[string]bool) error {
	b, err := readFile(ctx, c, name)
	if err != nil {
		return err
	}
	ni, err := ParseNarInfo(b)
	if err != nil {
		return err
	}
	if ni.StorePath.Dir() != storeDir {
		return fmt.Errorf("%s is not in the cache's store folder %s", ni.StorePath, storeDir)
	}
	if want := NarInfoFile(ni.StorePath); name != want {
		return fmt.Errorf("it is about %s, whose narinfo is %s", ni.StorePath, want)
	}
	if err := checkSigs(ni, pub); err != nil {
		return err
	}
	for _, r := range ni.References {
		if !have[r.HashPart()] {
			return fmt.Errorf("its reference %s has no narinfo in the cache", r)
		}
	}
	return checkNARFile(ctx, c, ni)
}

// checkSigs checks that ni has a valid signature by pub.
func checkSigs(ni *NarInfo, pub signing.PublicKey) error {
	fp := ni.Fingerprint()
	var names []string
	for _, s := range ni.Sigs {
		if pub.Verify(fp, s) {
			return nil
		}
		name, _, _ := signing.ParseSignature(s)
		names = append(names, name)
	}
	switch {
	case len(ni.Sigs) == 0:
		return errors.New("it is not signed")
	case slices.Contains(names, pub.Name):
		return fmt.Errorf("its signature by %s is not valid for its contents (fingerprint %q) and that key", pub.Name, fp)
	}
	return fmt.Errorf("it has no signature by the key %s (only by %s)", pub.Name, strings.Join(names, ", "))
}

// checkNARFile checks the NAR file of ni: size and hash of the file, and
// of the NAR once decompressed.
func checkNARFile(ctx context.Context, c Reader, ni *NarInfo) error {
	file := printable.String(c.Location(ni.URL))
	f, err := c.Open(ctx, ni.URL)
	if err != nil {
		return fmt.Errorf("its NAR file: %w", err)
	}
	defer f.Close()
	fileHash := sha256.New()
	raw := &countw.Writer{W: fileHash}
	r := io.TeeReader(bufio.NewReaderSize(f, 1<<20), raw)
	dec, done, err := NewDecompressorSize(ni.Compression, r, ni.NarSize)
	if err != nil {
		return fmt.Errorf("its NAR file %s: %w", file, err)
	}
	defer done()
	narHash := sha256.New()
	// Read no further than NarSize: a NAR that decompresses to more is
	// reported, not read to its end.
	n, err := io.Copy(narHash, &bounded.Reader{R: dec, Limit: ni.NarSize, What: "the NAR, longer than its NarSize"})
	if err != nil {
		return fmt.Errorf("its NAR file %s: decompressing (%s): %w", file, ni.Compression, err)
	}
	// Read what the decompressor left (padding after the stream), so
	// that the file's hash covers all of it.
	if _, err := io.Copy(io.Discard, r); err != nil {
		return fmt.Errorf("its NAR file %s: %w", file, err)
	}
	var problems []string
	if raw.N != ni.FileSize {
		problems = append(problems, fmt.Sprintf("the file has %d bytes, FileSize says %d", raw.N, ni.FileSize))
	}
	if h := sum(fileHash); h != ni.FileHash {
		problems = append(problems, fmt.Sprintf("the file's hash is %s, FileHash says %s", h, ni.FileHash))
	}
	if n != ni.NarSize {
		problems = append(problems, fmt.Sprintf("the NAR has %d bytes, NarSize says %d", n, ni.NarSize))
	}
	if h := sum(narHash); h != ni.NarHash {
		problems = append(problems, fmt.Sprintf("the NAR's hash is %s, NarHash says %s", h, ni.NarHash))
	}
	if len(problems) > 0 {
		return fmt.Errorf("its NAR file %s: %s", file, strings.Join(problems, "; "))
	}
	return nil
}
