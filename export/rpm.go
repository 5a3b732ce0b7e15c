package export

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/storepack/storepack/export/rpm"
	"github.com/storepack/storepack/export/tree"
	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/internal/atomicfile"
	"github.com/storepack/storepack/plan"
)

// rpmWriter writes rpm exports: one RPM v4 package of each system's tree
// (package rpm: SHA-256 file, header and payload digests, a cpio payload),
// as rpm installs it.
//
// rpmDef declares the format: an RPM v4 package of each system's tree.
var rpmDef = format.Def{Name: "rpm", Kind: format.Tree, Ext: ".rpm", PerSystem: true,
	Compressions: []format.Compression{format.Zstd, format.Gzip, format.XZ}, CompressionOf: "an rpm's payload",
	Attrs:  slices.Concat(format.TreeAttrs, format.DatabaseAttrs),
	Blocks: slices.Concat(format.ContentBlocks, []format.Block{{Name: "package", Required: true}})}

// The files come from the tree's own tar (package tree: the same modes,
// times and whole hard links as every other tree), read back entry by
// entry and spooled by package rpm into temporary files next to the
// output, so that memory holds the file list alone.
type rpmWriter struct{ treeWriter }

// Def declares the format.
func (rpmWriter) Def() *format.Def { return &rpmDef }

func (rpmWriter) write(j job) (written, error) {
	outDir := j.outDir
	return writeTrees(j, func(sys *plan.System, t *plan.TreeOutput, src tree.Source) (File, error) {
		final := filepath.Join(outDir, filepath.FromSlash(sys.Output))
		return writeAtomic(outDir, sys.Output, func(w io.Writer) error {
			return writeRPM(w, t, src, filepath.Dir(final), atomicfile.TempPrefix(final))
		})
	})
}

// rpmScript is the scriptlet of a maintainer script: its body without
// the #! line, run by the line's interpreter and argument (the body
// whole, by /bin/sh, when it has no #! line).
func rpmScript(script string) rpm.Script {
	if script == "" {
		return rpm.Script{}
	}
	interp, body, _ := plan.SplitInterpreter(script)
	return rpm.Script{Interpreter: interp, Body: body}
}

// writeRPM writes the package of t to w: its metadata from the package
// block, its files from the tree's tar; its temporary files go in tmpDir,
// named prefix and more (removeStale cleans up after a killed export).
func writeRPM(w io.Writer, t *plan.TreeOutput, src tree.Source, tmpDir, prefix string) error {
	p := t.Package
	summary, description := rpmDescription(p.Description)
	rw, err := rpm.NewWriter(tmpDir, prefix, rpm.Metadata{
		Name:        p.Name,
		Version:     p.Version,
		Release:     p.Release,
		Arch:        p.Architecture,
		Summary:     summary,
		Description: description,
		License:     p.License,
		URL:         p.Homepage,
		Packager:    p.Maintainer,
		BuildTime:   t.Created.Truncate(time.Second),
		Compression: t.Compression,
		Pre:         rpmScript(p.Scripts.Preinst),
		Post:        rpmScript(p.Scripts.Postinst),
		PreUn:       rpmScript(p.Scripts.Prerm),
		PostUn:      rpmScript(p.Scripts.Postrm),
	})
	if err != nil {
		return err
	}
	defer rw.Close()
	keep := rpmFolders(t)
	pr, pw := io.Pipe()
	go func() {
		_, err := tree.WriteTar(pw, &t.Tree, t.MTime(), src)
		pw.CloseWithError(err)
	}()
	defer pr.Close()
	tr := tar.NewReader(pr)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		name := "/" + strings.TrimSuffix(hdr.Name, "/")
		f := rpm.File{Path: name, Perm: uint32(hdr.Mode), MTime: hdr.ModTime}
		switch hdr.Typeflag {
		case tar.TypeDir:
			if !keep(name) {
				continue // rpm makes the folders above the files it installs
			}
			f.Type = rpm.Dir
			err = rw.Add(f, nil, 0)
		case tar.TypeSymlink:
			f.Type, f.LinkTo = rpm.Symlink, hdr.Linkname
			err = rw.Add(f, nil, 0)
		case tar.TypeReg:
			f.Type = rpm.Regular
			err = rw.Add(f, tr, hdr.Size)
		default:
			return fmt.Errorf("%s: an entry of type %c", name, hdr.Typeflag)
		}
		if err != nil {
			return err
		}
	}
	_, err = rw.WriteTo(w)
	return err
}

// rpmFolders reports which folders of t the rpm holds: those inside store
// items, the store folder and its parents. The folders the plan adds above
// symlinks and files (/usr/bin, /var/guix/db) are left for rpm to make, as
// it does for any missing folder, so that the package does not claim
// folders that other packages own with other modes.
func rpmFolders(t *plan.TreeOutput) func(name string) bool {
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

// OutputName is the name rpmbuild gives a package, and rpmlint expects:
// NAME-VERSION-RELEASE.ARCH.rpm.
func (rpmWriter) OutputName(sys *plan.System) string {
	p := sys.Tree.Package
	return fmt.Sprintf("%s-%s-%s.%s.rpm", p.Name, p.Version, p.Release, p.Architecture)
}

// PlanTree sets each system's package metadata, with its RPM
// architecture.
func (rpmWriter) PlanTree(t *plan.TreeOutput, s *plan.Settings) ([]plan.Entry, error) {
	return nil, planPackage(t, s, rpmDef.Name, s.Platform.RPM())
}
