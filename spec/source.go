package spec

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/storepack/storepack/store"
	"github.com/storepack/storepack/store/nar"
)

// sourceNode is a source block and, once evaluated, its store item.
type sourceNode struct {
	block *hcl.Block
	attrs hcl.Attributes
	st    int
	cycle bool
	ok    bool
	value Source
}

func (s *sourceNode) label() string        { return "source." + s.value.Name }
func (s *sourceNode) state() *int          { return &s.st }
func (s *sourceNode) defRange() *hcl.Range { return s.block.DefRange.Ptr() }

// object is the value source.<name> has in expressions.
func (s *sourceNode) object() cty.Value {
	return cty.ObjectVal(map[string]cty.Value{
		"store_path": cty.StringVal(string(s.value.StorePath)),
		"path":       cty.StringVal(s.value.Path),
		"name":       cty.StringVal(s.value.StoreName),
		"nar_hash":   cty.StringVal(s.value.NarHash.String()),
	})
}

var sourceSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "path", Required: true}, {Name: "name"},
}}

func (l *loader) declareSource(b *hcl.Block) {
	name := b.Labels[0]
	if !hclsyntax.ValidIdentifier(name) {
		l.errorf(b.LabelRanges[0].Ptr(), "Invalid source name", "%q is not a valid name: use letters, digits, underscores and dashes, starting with a letter.", name)
		return
	}
	if prev, ok := l.sources[name]; ok {
		l.errorf(b.DefRange.Ptr(), "Duplicate source", "The source %q is already defined at %s.", name, pos(prev.block.DefRange))
		return
	}
	content, diags := b.Body.Content(sourceSchema)
	l.diags = append(l.diags, diags...)
	s := &sourceNode{block: b, attrs: content.Attributes}
	s.value.Name = name
	s.value.Range = b.DefRange
	l.sources[name] = s
}

// evalSource evaluates s: its path and name, then its NAR hash, size and
// references, and so its store path.
func (l *loader) evalSource(s *sourceNode) {
	if !l.enter(s) {
		return
	}
	defer l.leave(s)
	l.evalStore()
	pathAttr, nameAttr := s.attrs["path"], s.attrs["name"]
	if pathAttr == nil {
		return // reported as a missing argument
	}
	p, set, ok := l.evalString(pathAttr)
	if !ok {
		return
	}
	if !set || p == "" {
		l.errorf(pathAttr.Expr.Range().Ptr(), "Invalid source path", "A source needs the path of a file or folder.")
		return
	}
	full := l.absPath(p)
	if _, err := os.Lstat(full); err != nil {
		if os.IsNotExist(err) {
			l.errorf(pathAttr.Expr.Range().Ptr(), "Source not found", "%s does not exist (relative paths start at the spec folder %s).", p, l.dir)
		} else {
			l.errorf(pathAttr.Expr.Range().Ptr(), "Cannot read source", "%s: %v.", p, unwrapPathError(err))
		}
		return
	}
	if _, err := os.Stat(full); errors.Is(err, syscall.ELOOP) {
		// nix-store --add would store the link itself; a link that leads
		// back to itself is never what a spec means to add.
		l.errorf(pathAttr.Expr.Range().Ptr(), "Source is a symbolic link loop",
			"%s is a symbolic link that leads back to itself (%v): name the file or folder to add.", full, unwrapPathError(err))
		return
	}
	name := filepath.Base(full)
	if v, set, ok := l.evalString(nameAttr); !ok {
		return
	} else if set {
		name = v
	}
	if err := store.ValidName(name); err != nil {
		subject := pathAttr.Expr.Range().Ptr()
		detail := "The store name defaults to the base name of path; set name to a valid one."
		if nameAttr != nil {
			subject, detail = nameAttr.Expr.Range().Ptr(), "A store name has 1 to 211 of the characters A-Z a-z 0-9 + - . _ ? =, and does not start with a dot."
		}
		l.errorf(subject, "Invalid store name", "%v. %s", err, detail)
		return
	}
	if s.cycle || !l.store.ok {
		return
	}
	dir := l.store.value.Dir
	cands, err := l.candidates(dir)
	if err != nil {
		l.errorf(l.store.defRange(), "Cannot list the store", "Finding the references of source %q: %v.", s.value.Name, err)
		return
	}
	h := sha256.New()
	var size countWriter
	scan := store.NewScanner(cands)
	if err := nar.Dump(io.MultiWriter(h, &size, scan), full); err != nil {
		l.errorf(pathAttr.Expr.Range().Ptr(), "Cannot read source", "%v.", err)
		return
	}
	s.value.Path = full
	s.value.StoreName = name
	copy(s.value.NarHash[:], h.Sum(nil))
	s.value.NarSize = int64(size)
	if refs := scan.References(); len(refs) > 0 {
		s.value.References = store.SortPaths(refs)
	}
	sp, err := dir.SourcePath(s.value.NarHash[:], name, s.value.References, false)
	if err != nil {
		l.errorf(s.block.DefRange.Ptr(), "Invalid source", "%v.", err)
		return
	}
	s.value.StorePath = sp
	s.ok = true
}

// candidates lists the items of the store folder dir, the references a
// source may have; none when the folder does not exist. The list is
// computed once.
func (l *loader) candidates(dir store.Dir) ([]store.Path, error) {
	if l.cands != nil {
		return l.cands, nil
	}
	l.cands = []store.Path{}
	root := l.store.value.Root
	if _, err := os.Stat(root + string(dir)); os.IsNotExist(err) {
		return l.cands, nil
	}
	st, err := store.Open(store.Options{Dir: dir, DB: store.DBNone, Root: root})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	items, err := st.Items()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	l.cands = items
	return items, nil
}

// countWriter counts the bytes written to it.
type countWriter int64

func (c *countWriter) Write(p []byte) (int, error) {
	*c += countWriter(len(p))
	return len(p), nil
}
