package export

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/storepack/storepack/export/squashfs"
	"github.com/storepack/storepack/export/tree"
	"github.com/storepack/storepack/plan"
	"github.com/storepack/storepack/store/nar"
)

// squashfsWriter writes squashfs exports: one squashfs image of each
// system's tree (package squashfs), laid out for Apptainer and
// Singularity by the plan (its runscript, environment and mount points).
// The entries come from the tree's own tar, read back as it streams.
type squashfsWriter struct{ treeWriter }

func (squashfsWriter) write(e *plan.Export, outDir string, o Options, count nar.Counter) ([]File, error) {
	return writeTrees(e, count, func(sys *plan.System, t *plan.TreeOutput, src tree.Source) (File, error) {
		return writeAtomicAt(outDir, sys.Output, func(out *os.File) error { return writeSquashfs(out, t, src) })
	})
}

// writeSquashfs writes t's image to out.
func writeSquashfs(out *os.File, t *plan.TreeOutput, src tree.Source) error {
	sw, err := squashfs.NewWriter(out, squashfs.Options{Compression: t.Compression, ModTime: t.Created})
	if err != nil {
		return err
	}
	pr, pw := io.Pipe()
	go func() {
		_, err := tree.WriteTar(pw, &t.Tree, t.MTime(), src)
		pw.CloseWithError(err)
	}()
	err = copyTarToSquashfs(sw, tar.NewReader(pr))
	pr.CloseWithError(err) // stops the tar writer when the image failed
	if _, cerr := sw.Close(); err == nil {
		err = cerr
	}
	return err
}

// copyTarToSquashfs adds every entry of a tree's tar to an image.
func copyTarToSquashfs(sw *squashfs.Writer, tr *tar.Reader) error {
	buf := make([]byte, 64<<10) // one for every file: io.Copy would make one each
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		h := &squashfs.Header{Name: hdr.Name, Mode: uint32(hdr.Mode), UID: uint32(hdr.Uid), GID: uint32(hdr.Gid), ModTime: hdr.ModTime, Size: hdr.Size, Linkname: hdr.Linkname}
		switch hdr.Typeflag {
		case tar.TypeDir:
			h.Type = squashfs.Dir
		case tar.TypeReg:
			h.Type = squashfs.Regular
		case tar.TypeSymlink:
			h.Type = squashfs.Symlink
		default:
			return fmt.Errorf("%s: an entry of type %c", hdr.Name, hdr.Typeflag)
		}
		if err := sw.WriteHeader(h); err != nil {
			return err
		}
		if h.Type == squashfs.Regular {
			if _, err := io.CopyBuffer(sw, tr, buf); err != nil {
				return err
			}
		}
	}
}
