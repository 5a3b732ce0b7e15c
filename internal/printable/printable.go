// Package printable is the one home of what storepack does to text from
// outside (names in NARs, archives and caches, index platforms, source
// file names, spec lines) before it reaches a terminal or a log: control
// characters are escaped, so that a hostile name cannot move the cursor,
// rewrite a line or forge another message; and of the redaction of
// credentials in URLs (a substituter's http://user:password@host/).
package printable

import (
	"fmt"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"
)

// String returns s with every control character (C0, DEL, C1, and the
// Unicode format characters that reorder text, such as U+202E) and every
// invalid UTF-8 byte escaped as Go escapes them (\n, \x1b, \u202e);
// a backslash stays as it is. Printable text is returned unchanged.
func String(s string) string {
	if clean(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case escaped(r):
			q := fmt.Sprintf("%+q", string(r))
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteRune(r)
		}
		i += size
	}
	return b.String()
}

// clean reports whether s needs no escape.
func clean(s string) bool {
	for _, r := range s {
		if r == utf8.RuneError || escaped(r) {
			return false
		}
	}
	return true
}

// escaped reports whether r is escaped by String.
func escaped(r rune) bool {
	return unicode.IsControl(r) || unicode.Is(unicode.Cf, r)
}

// URL returns u with the password of its user information replaced by
// "xxxxx" (as net/url's Redacted) and control characters escaped; a
// string that does not parse as a URL has whatever stands between "://"
// and the last "@" before the host's end replaced.
func URL(u string) string {
	if p, err := url.Parse(u); err == nil {
		if p.User != nil {
			if _, has := p.User.Password(); has {
				return String(p.Redacted())
			}
		}
		return String(u)
	}
	if _, rest, ok := strings.Cut(u, "://"); ok {
		end := strings.IndexAny(rest, "/?#")
		if end < 0 {
			end = len(rest)
		}
		if at := strings.LastIndex(rest[:end], "@"); at >= 0 {
			return String(u[:len(u)-len(rest)] + "xxxxx" + rest[at:])
		}
	}
	return String(u)
}

// Errorf is fmt.Errorf with every string argument (and every
// fmt.Stringer's text) passed through String: for messages that quote
// names from outside.
func Errorf(format string, args ...any) error {
	for i, a := range args {
		switch v := a.(type) {
		case string:
			args[i] = String(v)
		case fmt.Stringer:
			args[i] = String(v.String())
		}
	}
	return fmt.Errorf(format, args...)
}
