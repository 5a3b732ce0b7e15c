package spec

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/storepack/storepack/internal/bounded"
	"github.com/storepack/storepack/internal/printable"
)

// ANSI escapes used when writing diagnostics in color.
const (
	ansiRed    = "\x1b[1;31m"
	ansiYellow = "\x1b[1;33m"
	ansiBold   = "\x1b[1m"
	ansiReset  = "\x1b[0m"
)

// WriteDiagnostics writes diags to w as text, each with its severity and
// summary, its file:line:column, the source lines it points at with the
// subject marked by carets, and its detail:
//
//	Error: Unknown format
//
//	  on spec/storepack.hcl:2:12, in export "hello":
//	     2 |   format = "tar"
//	       |            ^^^^^
//	The format "tar" is not one of "nar", "docker", "oci", "binary-cache".
//
// files holds the parsed files by name (hclparse.Parser.Files()); a file
// not in it is read from disk. color adds ANSI colors.
func WriteDiagnostics(w io.Writer, files map[string]*hcl.File, diags hcl.Diagnostics, color bool) error {
	dw := &diagWriter{files: files, color: color, cache: map[string]*hcl.File{}}
	var buf bytes.Buffer
	for _, d := range diags {
		dw.write(&buf, d)
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// FormatDiagnostics is WriteDiagnostics to a string, without color.
func FormatDiagnostics(files map[string]*hcl.File, diags hcl.Diagnostics) string {
	var b strings.Builder
	_ = WriteDiagnostics(&b, files, diags, false)
	return b.String()
}

type diagWriter struct {
	files map[string]*hcl.File
	cache map[string]*hcl.File
	color bool
}

func (dw *diagWriter) paint(code, s string) string {
	if !dw.color || s == "" {
		return s
	}
	return code + s + ansiReset
}

// file finds a file's source: the given files, else the disk.
func (dw *diagWriter) file(name string) *hcl.File {
	if f := dw.files[name]; f != nil && f.Bytes != nil {
		return f
	}
	if f, ok := dw.cache[name]; ok {
		return f
	}
	var f *hcl.File
	if src, err := bounded.ReadFile(name, bounded.SpecFile); err == nil {
		f, _ = hclsyntax.ParseConfig(src, name, hcl.InitialPos)
		if f == nil || f.Bytes == nil {
			f = &hcl.File{Bytes: src}
		}
	}
	dw.cache[name] = f
	return f
}

func (dw *diagWriter) write(buf *bytes.Buffer, d *hcl.Diagnostic) {
	sev, code := "Error", ansiRed
	if d.Severity == hcl.DiagWarning {
		sev, code = "Warning", ansiYellow
	}
	fmt.Fprintf(buf, "%s: %s\n\n", dw.paint(code, sev), dw.paint(ansiBold, printable.String(d.Summary)))
	if s := d.Subject; s != nil {
		fmt.Fprintf(buf, "  on %s:%d:%d", printable.String(s.Filename), s.Start.Line, s.Start.Column)
		f := dw.file(s.Filename)
		if f == nil {
			buf.WriteString(":\n  (source not available)\n")
		} else {
			if cs, ok := f.Nav.(interface{ ContextString(int) string }); ok {
				if c := cs.ContextString(s.Start.Byte); c != "" {
					buf.WriteString(", in " + printableLine(c))
				}
			}
			buf.WriteString(":\n")
			dw.snippet(buf, f.Bytes, d, code)
		}
	}
	if d.Detail != "" {
		// Details may quote names from files: each line printed with
		// control characters escaped.
		lines := strings.Split(d.Detail, "\n")
		for i, l := range lines {
			lines[i] = printable.String(l)
		}
		buf.WriteString(strings.Join(lines, "\n"))
		buf.WriteString("\n")
	}
	if d.Subject != nil || d.Detail != "" {
		buf.WriteString("\n")
	}
}

// snippet writes the source lines that the subject (and context) cover,
// each line of the subject followed by carets under it.
func (dw *diagWriter) snippet(buf *bytes.Buffer, src []byte, d *hcl.Diagnostic, code string) {
	subject := *d.Subject
	if subject.Empty() {
		subject.End.Byte++
		subject.End.Column++
	}
	shown := subject
	if d.Context != nil && d.Context.Filename == subject.Filename {
		shown = hcl.RangeOver(shown, *d.Context)
	}
	sc := hcl.NewRangeScanner(src, subject.Filename, bufio.ScanLines)
	for sc.Scan() {
		// Lines and ranges as byte offsets: a line is [ls, le], le being
		// where its newline is; a range is [start, end).
		ls, le := sc.Range().Start.Byte, sc.Range().End.Byte
		if ls >= shown.End.Byte || shown.Start.Byte > le {
			continue
		}
		text := sc.Bytes()
		fmt.Fprintf(buf, "%6d | %s\n", sc.Range().Start.Line, printableLine(string(text)))
		if ls >= subject.End.Byte || subject.Start.Byte > le {
			continue
		}
		from := max(subject.Start.Byte, ls) - ls
		to := min(subject.End.Byte, le) - ls
		from, to = min(from, len(text)), min(to, len(text))
		var pad strings.Builder
		for _, r := range string(text[:from]) {
			if r == '\t' {
				pad.WriteRune('\t')
			} else {
				pad.WriteString(strings.Repeat(" ", utf8.RuneCountInString(printable.String(string(r)))))
			}
		}
		n := max(utf8.RuneCountInString(printableLine(string(text[from:to]))), 1)
		fmt.Fprintf(buf, "%6s | %s%s\n", "", pad.String(), dw.paint(code, strings.Repeat("^", n)))
	}
}

// printableLine is a source line as printed: tabs kept (the carets
// follow them), other control characters escaped (printable.String).
func printableLine(l string) string {
	parts := strings.Split(l, "\t")
	for i, p := range parts {
		parts[i] = printable.String(p)
	}
	return strings.Join(parts, "\t")
}
