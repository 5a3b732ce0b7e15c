package export

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/google/rpmpack"

	"github.com/storepack/storepack/gen"
	"github.com/storepack/storepack/nar"
	"github.com/storepack/storepack/tree"
)

// rpmWriter writes rpm exports: one RPM v4 package of each system's tree
// (google/rpmpack: SHA-256 file, header and payload digests, a cpio
// payload), as rpm installs it.
//
// The files come from the tree's own tar (package tree: the same modes,
// times and whole hard links as every other tree), read back entry by
// entry. rpmpack holds every file's contents and the compressed payload in
// memory until it writes the package, and records sizes in 32 bits: an
// rpm export needs memory for its closure and is limited to 2 GiB of
// files (docs/trees.md).
type rpmWriter struct{ treeWriter }

func (rpmWriter) write(e *gen.Export, outDir string, o Options, count nar.Counter) ([]File, error) {
	return writeTrees(e, count, func(sys *gen.System, t *gen.TreeOutput, src tree.Source) (File, error) {
		r, err := buildRPM(t, src)
		if err != nil {
			return File{}, err
		}
		return writeAtomic(outDir, sys.Output, r.Write)
	})
}

// rpmMaxSize is the most bytes of files an rpm holds: its header records
// sizes in 32 bits.
const rpmMaxSize = math.MaxInt32

// buildRPM makes the package of t: its metadata from the package block,
// its files from the tree's tar.
func buildRPM(t *gen.TreeOutput, src tree.Source) (*rpmpack.RPM, error) {
	p := t.Package
	summary, description := rpmDescription(p.Description)
	r, err := rpmpack.NewRPM(rpmpack.RPMMetaData{
		Name:        p.Name,
		Version:     p.Version,
		Release:     p.Release,
		Arch:        p.Architecture,
		OS:          "linux",
		Summary:     summary,
		Description: description,
		Licence:     p.License,
		URL:         p.Homepage,
		Packager:    p.Maintainer,
		BuildHost:   "localhost",
		BuildTime:   t.Created.Truncate(1e9),
		Compressor:  string(t.Compression),
	})
	if err != nil {
		return nil, err
	}
	keep := rpmFolders(t)
	pr, pw := io.Pipe()
	go func() {
		_, err := tree.WriteTar(pw, &t.Tree, t.MTime(), src)
		pw.CloseWithError(err)
	}()
	defer pr.Close()
	tr := tar.NewReader(pr)
	var total int64
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		name := "/" + strings.TrimSuffix(hdr.Name, "/")
		f := rpmpack.RPMFile{Name: name, Mode: uint(hdr.Mode), Owner: "root", Group: "root", MTime: uint32(t.MTime())}
		switch hdr.Typeflag {
		case tar.TypeDir:
			if !keep(name) {
				continue // rpm makes the folders above the files it installs
			}
			f.Mode |= 0o40000
		case tar.TypeSymlink:
			f.Mode, f.Body = 0o120000|0o777, []byte(hdr.Linkname)
		case tar.TypeReg:
			if total += hdr.Size; total > rpmMaxSize {
				return nil, fmt.Errorf("the tree holds more than %d bytes of files, which an rpm cannot record", rpmMaxSize)
			}
			if f.Body, err = io.ReadAll(tr); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("%s: an entry of type %c", name, hdr.Typeflag)
		}
		r.AddFile(f)
	}
	return r, nil
}

// rpmFolders reports which folders of t the rpm holds: those inside store
// items, the store folder and its parents. The folders the plan adds above
// symlinks and files (/usr/bin, /var/guix/db) are left for rpm to make, as
// it does for any missing folder, so that the package does not claim
// folders that other packages own with other modes.
func rpmFolders(t *gen.TreeOutput) func(name string) bool {
	if len(t.Items) == 0 {
		return func(string) bool { return false }
	}
	storeDir := string(t.Items[0].Dir())
	return func(name string) bool {
		return strings.HasPrefix(name, storeDir+"/") || storeDir == name || strings.HasPrefix(storeDir, name+"/")
	}
}

// rpmDescription splits a package's description into rpm's summary (its
// first line) and description (the rest, or the summary when there is no
// rest).
func rpmDescription(desc string) (summary, description string) {
	summary, rest, _ := strings.Cut(strings.TrimSpace(desc), "\n")
	rest = strings.TrimSpace(rest)
	if rest == "" {
		rest = summary
	}
	return strings.TrimSpace(summary), rest
}
