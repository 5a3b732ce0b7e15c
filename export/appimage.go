package export

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/storepack/storepack/export/squashfs"
	"github.com/storepack/storepack/export/tree"
	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/internal/bounded"
	"github.com/storepack/storepack/internal/shell"
	"github.com/storepack/storepack/plan"
)

// An AppImage (type 2, as Guix 1.5's `guix pack -f appimage` and
// appimagetool write it) is an ELF runtime followed directly by a
// squashfs image of an AppDir:
//
//   - the runtime (appimage { runtime }), up to where its ELF ends
//     (e_shoff + e_shentsize × e_shnum), with the magic "AI\x02" at bytes
//     8 to 10 of its identification;
//   - at that offset, the squashfs image (zstd by default, or gzip) of the
//     tree: the closure at its store paths, with the profile's programs
//     wrapped to run from wherever the image is mounted (relocatable), and
//     at its top AppRun (a relative link to the entry point, or a script
//     passing the entry point's arguments), NAME.desktop, the icon
//     NAME.svg and .DirIcon.
//
// The runtime mounts the image and runs AppRun; `--appimage-extract`
// (or unsquashfs -o OFFSET) unpacks it, and AppRun runs from there too.

// appImageDef declares the format: an AppImage of each system's tree.
var appImageDef = format.Def{Name: "appimage", Kind: format.Tree, Ext: ".AppImage", PerSystem: true,
	Compressions: []format.Compression{format.Zstd, format.Gzip}, CompressionOf: "an AppImage's squashfs image",
	Attrs:    slices.Concat(format.RunAttrs, format.TreeAttrs, format.RelocatableAttrs),
	Blocks:   slices.Concat(format.ContentBlocks, []format.Block{{Name: "appimage", Required: true}}),
	Requires: []string{"entrypoint", "profile", "relocatable"}}

// appImageWriter writes appimage exports: one AppImage of each system's
// tree.
type appImageWriter struct{ treeWriter }

// Def declares the format.
func (appImageWriter) Def() *format.Def { return &appImageDef }

func (appImageWriter) write(j job) (written, error) {
	outDir := j.outDir
	return writeTrees(j, func(sys *plan.System, t *plan.TreeOutput, src tree.Source) (File, error) {
		return writeAtomicAt(outDir, sys.Output, func(out *os.File) error { return writeAppImage(out, t, src) })
	})
}

// writeAppImage writes t's AppImage to out: the runtime, then the
// squashfs image at the offset where the runtime's ELF ends.
func writeAppImage(out *os.File, t *plan.TreeOutput, src tree.Source) error {
	rt, err := appImageRuntime(t.Runtime)
	if err != nil {
		return err
	}
	if _, err := out.WriteAt(rt, 0); err != nil {
		return err
	}
	return squashfs.WriteTree(offsetWriter{out, int64(len(rt))}, t, src)
}

// offsetWriter writes into w from off on.
type offsetWriter struct {
	w   io.WriterAt
	off int64
}

func (o offsetWriter) WriteAt(p []byte, off int64) (int, error) { return o.w.WriteAt(p, o.off+off) }

// maxRuntime bounds a runtime's file: they weigh a few hundred KiB.
const maxRuntime = 64 << 20

// appImageRuntime reads the runtime at p: its ELF, up to where the ELF
// ends, with the type-2 magic at bytes 8 to 10.
func appImageRuntime(p string) ([]byte, error) {
	if p == "" {
		return nil, errors.New("no AppImage runtime (appimage { runtime })")
	}
	b, err := bounded.ReadFile(p, maxRuntime)
	if err != nil {
		return nil, fmt.Errorf("AppImage runtime: %w", err)
	}
	end, err := elfEnd(b)
	if err != nil {
		return nil, fmt.Errorf("AppImage runtime %s: %w", p, err)
	}
	rt := slices.Clone(b[:end])
	copy(rt[8:11], "AI\x02")
	return rt, nil
}

// elfEnd is where the ELF b ends, as AppImage tools compute it: the end
// of its section header table.
func elfEnd(b []byte) (int64, error) {
	if len(b) < 64 || string(b[:4]) != "\x7fELF" {
		return 0, errors.New("not an ELF file")
	}
	var bo binary.ByteOrder
	switch b[5] {
	case 1:
		bo = binary.LittleEndian
	case 2:
		bo = binary.BigEndian
	default:
		return 0, errors.New("an ELF of unknown byte order")
	}
	var shoff, shentsize, shnum uint64
	switch b[4] {
	case 1:
		shoff, shentsize, shnum = uint64(bo.Uint32(b[0x20:])), uint64(bo.Uint16(b[0x2e:])), uint64(bo.Uint16(b[0x30:]))
	case 2:
		shoff, shentsize, shnum = bo.Uint64(b[0x28:]), uint64(bo.Uint16(b[0x3a:])), uint64(bo.Uint16(b[0x3c:]))
	default:
		return 0, errors.New("an ELF of unknown class")
	}
	end := shoff + shentsize*shnum
	if shnum == 0 || end > uint64(len(b)) || end < 64 {
		return 0, fmt.Errorf("its section headers end at %d, outside its %d bytes", end, len(b))
	}
	return int64(end), nil
}

// PlanTree adds the AppDir's entries at the top of the tree and names the
// runtime. (An AppImage runs from where it is mounted: the spec requires
// its profile relocatable, appImageDef.Requires.)
func (appImageWriter) PlanTree(t *plan.TreeOutput, s *plan.Settings) ([]plan.Entry, error) {
	if s.AppImage == nil {
		return nil, errors.New("no appimage block")
	}
	if len(s.Entrypoint) == 0 {
		return nil, errors.New("an AppImage needs an entrypoint")
	}
	t.Runtime = s.AppImage.Runtime
	program := s.Entrypoint[0]
	if !strings.HasPrefix(program, "/") {
		return nil, fmt.Errorf("entrypoint %q: not a path", program)
	}
	rel := strings.TrimPrefix(program, "/")
	var entries []plan.Entry
	if len(s.Entrypoint) == 1 {
		entries = append(entries, plan.Entry{Path: "/AppRun", Type: plan.EntrySymlink, Mode: 0o777, Target: rel})
	} else {
		// A script passes the entry point's arguments; it finds the
		// AppDir from its own path.
		var run strings.Builder
		run.WriteString("#!/bin/sh\nhere=$(dirname \"$(readlink -f \"$0\")\")\nexec \"$here\"/" + shell.Quote(rel))
		for _, a := range s.Entrypoint[1:] {
			run.WriteString(" " + shell.Quote(a))
		}
		run.WriteString(" \"$@\"\n")
		entries = append(entries, plan.Entry{Path: "/AppRun", Type: plan.EntryFile, Mode: 0o755, Content: run.String()})
	}
	name := s.Export
	exec := program[strings.LastIndexByte(program, '/')+1:]
	desktop := "[Desktop Entry]\nType=Application\nName=" + s.AppImage.Name + "\nExec=" + exec + "\nIcon=" + name +
		"\nCategories=" + strings.Join(s.AppImage.Categories, ";") + ";\nTerminal=true\n"
	entries = append(entries,
		plan.Entry{Path: "/" + name + ".desktop", Type: plan.EntryFile, Mode: 0o644, Content: desktop},
		plan.Entry{Path: "/" + name + ".svg", Type: plan.EntryFile, Mode: 0o644, Content: appImageIcon},
		plan.Entry{Path: "/.DirIcon", Type: plan.EntrySymlink, Mode: 0o777, Target: name + ".svg"},
	)
	return entries, nil
}

// appImageIcon is the icon every AppImage has unless its closure gives
// one: a plain square, for the desktop entry's Icon=.
const appImageIcon = `<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64" viewBox="0 0 64 64"><rect x="4" y="4" width="56" height="56" rx="8" fill="#4a6d8c"/></svg>
`
