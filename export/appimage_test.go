package export

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/internal/fixture"
	"github.com/storepack/storepack/plan"
	"github.com/storepack/storepack/spec"
)

// tinyELF writes the smallest ELF64 file elfEnd reads: a header whose one
// section header follows it, 128 bytes in all, and returns its path.
func tinyELF(t testing.TB) string {
	t.Helper()
	b := make([]byte, 128)
	copy(b, "\x7fELF\x02\x01\x01")
	binary.LittleEndian.PutUint64(b[0x28:], 64) // e_shoff
	binary.LittleEndian.PutUint16(b[0x3a:], 64) // e_shentsize
	binary.LittleEndian.PutUint16(b[0x3c:], 1)  // e_shnum
	p := filepath.Join(t.TempDir(), "runtime")
	if err := os.WriteFile(p, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// helloAppImage plans an AppImage of the Hello fixture (no profile: the
// entry point is the program's store path).
func helloAppImage(t testing.TB, root string, c format.Compression) *plan.Export {
	t.Helper()
	hello := string(fixture.StorePath("/gnu/store", "hello-2.12"))
	runtime := tinyELF(t)
	e, _ := treeExport(t, format.Format("appimage"), "/gnu/store", root, fixture.Hello(), []string{"hello-2.12"}, func(e *spec.Export) {
		e.Compression = c
		e.Entrypoint = []string{hello + "/bin/hello", "--greeting", "it's"}
		e.AppImage = &spec.AppImage{Runtime: runtime, Name: "Hello", Categories: []string{"Utility"}}
	})
	return e
}

// TestAppImageLayout: the runtime up to its ELF's end with the type-2
// magic, then the squashfs image at that offset, holding the AppDir's
// AppRun (a script passing the entry point's arguments), desktop entry
// and icon beside the closure.
func TestAppImageLayout(t *testing.T) {
	e := helloAppImage(t, "", format.Zstd)
	b, err := os.ReadFile(writeTreeFile(t, e))
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 132 || string(b[:4]) != "\x7fELF" || string(b[8:11]) != "AI\x02" {
		t.Fatalf("the AppImage does not start with the runtime and its magic: % x", b[:16])
	}
	if string(b[128:132]) != "hsqs" {
		t.Fatalf("no squashfs at the runtime's end (128): % x", b[128:132])
	}
	run := e.Systems[0].Tree.Entries
	var appRun, desktop string
	for _, en := range run {
		switch en.Path {
		case "/AppRun":
			appRun = en.Content
		case "/hello.desktop":
			desktop = en.Content
		}
	}
	if !strings.Contains(appRun, `exec "$here"/'gnu/store/`) || !strings.Contains(appRun, `'--greeting' 'it'\''s' "$@"`) {
		t.Errorf("AppRun:\n%s", appRun)
	}
	if !strings.Contains(desktop, "Name=Hello\n") || !strings.Contains(desktop, "Exec=hello\n") || !strings.Contains(desktop, "Icon=hello\n") {
		t.Errorf("desktop entry:\n%s", desktop)
	}
}

// TestElfEnd reads where ELF files end and refuses what is not one.
func TestElfEnd(t *testing.T) {
	b, err := os.ReadFile(tinyELF(t))
	if err != nil {
		t.Fatal(err)
	}
	if end, err := elfEnd(b); err != nil || end != 128 {
		t.Errorf("elfEnd = %d, %v; want 128", end, err)
	}
	if _, err := elfEnd(b[:100]); err == nil {
		t.Error("a cut ELF: no error")
	}
	if _, err := elfEnd(bytes.Repeat([]byte{'x'}, 200)); err == nil {
		t.Error("not an ELF: no error")
	}
	// A program linked by GNU ld keeps its section headers last: its ELF
	// is the whole file.
	eb, err := os.ReadFile("/bin/true")
	if err != nil {
		t.Skipf("no /bin/true: %v", err)
	}
	if end, err := elfEnd(eb); err != nil || end != int64(len(eb)) {
		t.Errorf("/bin/true's ELF ends at %d of %d bytes: %v", end, len(eb), err)
	}
}
