package printable

import (
	"errors"
	"testing"
)

func TestString(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"plain name-1.0", "plain name-1.0"},
		{"é ü 日本", "é ü 日本"},
		{"a\nb", `a\nb`},
		{"\x1b[2Jclear", `\x1b[2Jclear`},
		{"tab\there", `tab\there`},
		{"del\x7f", `del\x7f`},
		{"c1\u0085", `c1\u0085`},
		{"rtl\u202efdp.exe", `rtl\u202efdp.exe`},
		{"bad\xffutf8", `bad\xffutf8`},
		{`back\slash`, `back\slash`},
	} {
		if got := String(c.in); got != c.want {
			t.Errorf("String(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestURL(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"https://cache.example/nix", "https://cache.example/nix"},
		{"http://user:secret@cache.example/", "http://user:xxxxx@cache.example/"},
		{"http://token@cache.example/", "http://token@cache.example/"},
		{"http://user:se%zzcret@cache.example/x", "http://xxxxx@cache.example/x"},
		{"file:///srv/cache\n", `file:///srv/cache\n`},
	} {
		if got := URL(c.in); got != c.want {
			t.Errorf("URL(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestErrorf(t *testing.T) {
	base := errors.New("inner")
	err := Errorf("entry %q, name %s: %w", "a\x1bb", "c\rd", base)
	if want := `entry "a\\x1bb", name c\rd: inner`; err.Error() != want {
		t.Errorf("got %q, want %q", err.Error(), want)
	}
	if !errors.Is(err, base) {
		t.Error("the wrapped error is lost")
	}
}
