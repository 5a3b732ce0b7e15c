package export

import (
	"archive/tar"
	"cmp"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/storepack/storepack/export/tree"
	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/internal/atomicfile"
	"github.com/storepack/storepack/internal/blockbuf"
	"github.com/storepack/storepack/internal/compress"
	"github.com/storepack/storepack/internal/countw"
	"github.com/storepack/storepack/plan"
)

// debWriter writes deb exports: one Debian binary package of each
// system's tree, as dpkg installs it.
//
// debDef declares the format: a Debian binary package of each system's tree.
var debDef = format.Def{Name: "deb", Kind: format.Tree, Ext: ".deb", PerSystem: true,
	Compressions: []format.Compression{format.XZ, format.Gzip, format.Zstd, format.None}, CompressionOf: "a deb's data.tar",
	Attrs: slices.Concat(format.TreeAttrs, format.DatabaseAttrs),
	Blocks: slices.Concat(format.ContentBlocks, []format.Block{{Name: "package", Required: true,
		Recommended: map[string]string{"maintainer": "Debian packages name their maintainer: dpkg warns when it installs one without. " +
			`Set maintainer = "Name <address>".`}}})}

// A deb is an ar archive of three members: debian-binary ("2.0"),
// control.tar (the control file and md5sums) and data.tar (the tree, the
// tar of package tree with "./" before every name, as dpkg-deb writes
// it), both compressed as the export says. It is written here rather than
// with a packaging library because its data.tar must be the tree's own
// reproducible, streamed tar: control.tar holds the data's md5sums, so the
// data is compressed to a temporary file next to the output while its
// md5sums are taken from the same stream, then the package is written
// around it.
type debWriter struct{ treeWriter }

// Def declares the format.
func (debWriter) Def() *format.Def { return &debDef }

func (debWriter) write(j job) (written, error) {
	outDir := j.outDir
	return writeTrees(j, func(sys *plan.System, t *plan.TreeOutput, src tree.Source) (File, error) {
		return writeDeb(outDir, sys.Output, t, src)
	})
}

// writeDeb writes the deb of tree t to the file rel inside outDir.
func writeDeb(outDir, rel string, t *plan.TreeOutput, src tree.Source) (File, error) {
	final := filepath.Join(outDir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(final), 0o777); err != nil {
		return File{}, fmt.Errorf("%s: %w", final, err)
	}
	// The data, next to the output under the temporary name removeStale
	// knows.
	data, err := os.CreateTemp(filepath.Dir(final), atomicfile.TempPrefix(final)+"data-*")
	if err != nil {
		return File{}, fmt.Errorf("%s: %w", final, err)
	}
	defer os.Remove(data.Name())
	defer data.Close()
	sums, err := writeDebData(data, t, src)
	if err != nil {
		return File{}, fmt.Errorf("%s: data.tar: %w", final, err)
	}
	// control.tar follows the data in the same file: with a closure's
	// md5sums (a line for each of its files) it can take as many MiB.
	size, err := data.Seek(0, io.SeekEnd)
	if err != nil {
		return File{}, fmt.Errorf("%s: %w", final, err)
	}
	control := &countw.Writer{W: data}
	if err := debControl(control, t, sums); err != nil {
		return File{}, fmt.Errorf("%s: control.tar: %w", final, err)
	}
	return writeAtomic(outDir, rel, func(w io.Writer) error {
		ext := compress.Ext(t.Compression)
		mtime := t.MTime()
		if err := writeArMember(w, "!<arch>\n", "debian-binary", mtime, int64(len("2.0\n")), strings.NewReader("2.0\n")); err != nil {
			return err
		}
		if err := writeArMember(w, "", "control.tar"+ext, mtime, control.N, io.NewSectionReader(data, size, control.N)); err != nil {
			return err
		}
		return writeArMember(w, "", "data.tar"+ext, mtime, size, io.NewSectionReader(data, 0, size))
	})
}

// debSums is what control.tar says of the data: each regular file's md5
// (path without "./"), in tar order, and the installed size in KiB.
type debSums struct {
	md5sums   blockbuf.Buffer // a line for each of a closure's files: many MiB
	installed int64
}

// writeDebData writes t's data.tar, compressed, to w and returns its
// md5sums, read from the same stream by a tar reader on another
// goroutine.
func writeDebData(w io.Writer, t *plan.TreeOutput, src tree.Source) (*debSums, error) {
	cw, err := compress.NewWriter(w, t.Compression, compress.Options{Parallel: true})
	if err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	type result struct {
		sums *debSums
		err  error
	}
	done := make(chan result, 1)
	go func() {
		s, err := readDebSums(pr)
		pr.CloseWithError(err) // stops the writer if reading failed
		done <- result{s, err}
	}()
	src.Prefix, src.GNU = "./", true
	_, err = tree.WriteTar(io.MultiWriter(cw, pw), &t.Tree, t.MTime(), src)
	pw.CloseWithError(err)
	r := <-done
	if cerr := cw.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = r.err
	}
	return r.sums, err
}

// readDebSums reads a data.tar and sums it up: md5sums of its regular
// files and dpkg's installed size (each file's size rounded up to KiB, and
// one KiB for each other entry).
func readDebSums(r io.Reader) (*debSums, error) {
	s := &debSums{}
	tr := tar.NewReader(r)
	h := md5.New()
	var sum [md5.Size]byte
	var hexSum [2 * md5.Size]byte
	buf := make([]byte, 64<<10) // one for every file: io.Copy would make one each
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if hdr.Typeflag != tar.TypeReg {
			s.installed++
			continue
		}
		h.Reset()
		n, err := io.CopyBuffer(h, tr, buf)
		if err != nil {
			return nil, err
		}
		s.installed += (n + 1023) / 1024
		name := strings.TrimPrefix(hdr.Name, "./")
		if strings.ContainsAny(name, "\n") {
			return nil, fmt.Errorf("%q: a file name with a newline cannot be listed in md5sums", name)
		}
		hex.Encode(hexSum[:], h.Sum(sum[:0]))
		s.md5sums.Write(hexSum[:])
		s.md5sums.WriteString("  ")
		s.md5sums.WriteString(name)
		s.md5sums.WriteString("\n")
	}
	// What follows the tar's end (nothing, as tree writes it) is read so
	// that the writer never blocks.
	_, err := io.Copy(io.Discard, r)
	return s, err
}

// debControl writes control.tar to w, compressed as t says: "./",
// "./control", "./md5sums" and the package's maintainer scripts
// ("./preinst" and the others, executable), in name order, owned by root,
// at t's time.
func debControl(w io.Writer, t *plan.TreeOutput, sums *debSums) error {
	cw, err := compress.NewWriter(w, t.Compression, compress.Options{})
	if err != nil {
		return err
	}
	tw := tar.NewWriter(cw)
	mtime := time.Unix(t.MTime(), 0)
	// content is a string or the md5sums' blocks.
	add := func(name string, mode int64, content io.WriterTo, size int64) error {
		hdr := &tar.Header{Name: name, Mode: mode, ModTime: mtime, Uname: "root", Gname: "root", Format: tar.FormatGNU, Size: size, Typeflag: tar.TypeReg}
		if strings.HasSuffix(name, "/") {
			hdr.Typeflag = tar.TypeDir
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err := content.WriteTo(tw)
		return err
	}
	control, err := debControlFile(t.Package, sums.installed)
	if err != nil {
		return err
	}
	type member struct {
		name    string
		mode    int64
		content io.WriterTo
		size    int64
	}
	text := func(name string, mode int64, s string) member {
		return member{name, mode, strings.NewReader(s), int64(len(s))}
	}
	members := []member{
		text("./", 0o755, ""),
		text("./control", 0o644, control),
		{"./md5sums", 0o644, &sums.md5sums, sums.md5sums.Len()},
	}
	for _, s := range t.Package.Scripts.List() {
		members = append(members, text("./"+s.Name, 0o755, s.Text))
	}
	// In name order, as dpkg-deb sorts them.
	slices.SortFunc(members, func(a, b member) int { return strings.Compare(a.name, b.name) })
	for _, f := range members {
		if err := add(f.name, f.mode, f.content, f.size); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return cw.Close()
}

// debControlFile is the control file of the package p: Package, Version,
// Architecture, Maintainer, Installed-Size (KiB), Section (default
// "misc"), Priority (default "optional"), Homepage and Description, in the
// order dpkg-deb lists them.
func debControlFile(p *plan.Package, installed int64) (string, error) {
	var b strings.Builder
	field := func(name, value string) error {
		if strings.ContainsAny(value, "\n\r") {
			return fmt.Errorf("%s %q: more than one line", name, value)
		}
		if value != "" {
			fmt.Fprintf(&b, "%s: %s\n", name, value)
		}
		return nil
	}
	for _, f := range [][2]string{
		{"Package", p.Name},
		{"Version", p.Version},
		{"Architecture", p.Architecture},
		{"Maintainer", p.Maintainer},
		{"Installed-Size", fmt.Sprint(installed)},
		{"Section", cmp.Or(p.Section, "misc")},
		{"Priority", cmp.Or(p.Priority, "optional")},
		{"Homepage", p.Homepage},
	} {
		if err := field(f[0], f[1]); err != nil {
			return "", err
		}
	}
	lines := strings.Split(strings.TrimSpace(p.Description), "\n")
	fmt.Fprintf(&b, "Description: %s\n", strings.TrimSpace(lines[0]))
	for _, l := range lines[1:] {
		// Extended description: each line after a space; an empty line
		// is " .".
		if strings.TrimSpace(l) == "" {
			l = "."
		}
		fmt.Fprintf(&b, " %s\n", l)
	}
	return b.String(), nil
}

// writeArMember writes an ar member (after prefix, the archive's magic
// for the first one): a 60-byte header as dpkg-deb writes it (the name
// left-aligned in 16 bytes, the mtime, owner 0:0, mode 100644, the size)
// and size bytes of r, padded to an even length with "\n".
func writeArMember(w io.Writer, prefix, name string, mtime, size int64, r io.Reader) error {
	hdr := fmt.Sprintf("%s%-16s%-12d%-6d%-6d%-8s%-10d`\n", prefix, name, mtime, 0, 0, "100644", size)
	if len(hdr) != len(prefix)+60 {
		return fmt.Errorf("ar member %s: header of %d bytes", name, len(hdr)-len(prefix))
	}
	if _, err := io.WriteString(w, hdr); err != nil {
		return err
	}
	n, err := io.Copy(w, r)
	if err != nil {
		return err
	}
	if n != size {
		return fmt.Errorf("ar member %s: %d bytes, %d expected", name, n, size)
	}
	if size%2 == 1 {
		_, err = io.WriteString(w, "\n")
	}
	return err
}

// PlanTree sets each system's package metadata, with its Debian
// architecture.
func (debWriter) PlanTree(t *plan.TreeOutput, s *plan.Settings) ([]plan.Entry, error) {
	return nil, planPackage(t, s, debDef.Name, s.Platform.Debian())
}
