package progress

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

// openPTY opens a pseudo-terminal of cols columns and returns its
// terminal side.
func openPTY(t *testing.T, cols uint16) *os.File {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { master.Close() })
	fd := int(master.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlocking the pseudo-terminal: %v", err)
	}
	n, err := unix.IoctlGetUint32(fd, unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("numbering the pseudo-terminal: %v", err)
	}
	tty, err := os.OpenFile("/dev/pts/"+strconv.Itoa(int(n)), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tty.Close() })
	if err := unix.IoctlSetWinsize(int(tty.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Col: cols, Row: 24}); err != nil {
		t.Fatal(err)
	}
	return tty
}

func TestAuto(t *testing.T) {
	file, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	tty := openPTY(t, 123)
	tests := []struct {
		name     string
		w        io.Writer
		terminal bool
		width    int
	}{
		{"buffer", &bytes.Buffer{}, false, 0},
		{"file", file, false, 0},
		{"pseudo-terminal", tty, true, 123},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := tt.w
			r := Auto(w, Config{})
			term, isTerm := r.(*Terminal)
			if _, isPlain := r.(*Plain); isTerm == isPlain || isTerm != tt.terminal || IsTerminal(w) != tt.terminal {
				t.Fatalf("Auto gave %T (IsTerminal %v), want a terminal: %v", r, IsTerminal(w), tt.terminal)
			}
			if isTerm && term.cfg.Width != tt.width {
				t.Errorf("width %d, want %d", term.cfg.Width, tt.width)
			}
		})
	}
}
