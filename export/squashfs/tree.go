package squashfs

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"

	"github.com/storepack/storepack/export/tree"
	"github.com/storepack/storepack/plan"
)

// WriteTree writes t's tree (the tar of its entries and items, read from
// src: export/tree) as a squashfs image to out, at out's offset 0.
func WriteTree(out io.WriterAt, t *plan.TreeOutput, src tree.Source) error {
	sw, err := NewWriter(out, Options{Compression: t.Compression, ModTime: t.Created})
	if err != nil {
		return err
	}
	pr, pw := io.Pipe()
	go func() {
		_, err := tree.WriteTar(pw, &t.Tree, t.MTime(), src)
		pw.CloseWithError(err)
	}()
	err = copyTar(sw, tar.NewReader(pr))
	pr.CloseWithError(err) // stops the tar writer when the image failed
	if _, cerr := sw.Close(); err == nil {
		err = cerr
	}
	return err
}

// copyTar adds every entry of a tree's tar to an image.
func copyTar(sw *Writer, tr *tar.Reader) error {
	buf := make([]byte, 64<<10) // one for every file: io.Copy would make one each
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		h := &Header{Name: hdr.Name, Mode: uint32(hdr.Mode), UID: uint32(hdr.Uid), GID: uint32(hdr.Gid), ModTime: hdr.ModTime, Size: hdr.Size, Linkname: hdr.Linkname}
		switch hdr.Typeflag {
		case tar.TypeDir:
			h.Type = Dir
		case tar.TypeReg:
			h.Type = Regular
		case tar.TypeSymlink:
			h.Type = Symlink
		default:
			return fmt.Errorf("%s: an entry of type %c", hdr.Name, hdr.Typeflag)
		}
		if err := sw.WriteHeader(h); err != nil {
			return err
		}
		if h.Type == Regular {
			if _, err := io.CopyBuffer(sw, tr, buf); err != nil {
				return err
			}
		}
	}
}
