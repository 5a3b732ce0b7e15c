package shell

import (
	"os/exec"
	"testing"
)

// TestQuote: sh prints each word as it was, whatever it holds.
func TestQuote(t *testing.T) {
	for _, w := range []string{"", "plain", "it's", "a b", "$HOME", "`x`", "\\", "'''", "new\nline"} {
		out, err := exec.Command("/bin/sh", "-c", "printf %s "+Quote(w)).Output()
		if err != nil || string(out) != w {
			t.Errorf("sh printed %q for %q (%v)", out, w, err)
		}
	}
}

func TestName(t *testing.T) {
	for k, want := range map[string]bool{"PATH": true, "_x1": true, "": false, "1A": false, "A-B": false, "é": false} {
		if Name(k) != want {
			t.Errorf("Name(%q) = %v", k, !want)
		}
	}
}
