package spec

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// AppImage is the appimage block of an AppImage export.
type AppImage struct {
	// Runtime is the type-2 runtime's file, absolute (a store path is
	// read from the store, under its root): the ELF the image starts with.
	Runtime string
	// Name is the .desktop file's Name (default: the export's name);
	// Categories its Categories (default ["Utility"]).
	Name       string
	Categories []string `json:",omitempty"`
}

var appImageSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "runtime", Required: true}, {Name: "name"}, {Name: "categories"},
}}

// appImageBlock decodes the appimage block of the formats that take it
// (format.Def.Block).
func (l *loader) appImageBlock(d *exportDecl, blocks hcl.Blocks) {
	e := &d.e
	if e.Format == "" {
		return
	}
	block, takes := e.Format.Def().Block("appimage")
	for i, b := range blocks {
		switch {
		case !takes:
			l.errorf(b.DefRange.Ptr(), "Unexpected appimage block", "An appimage block gives an AppImage's runtime and desktop entry; the export %q has format %q.", e.Name, e.Format)
			continue
		case i > 0:
			l.errorf(b.DefRange.Ptr(), "Duplicate appimage block", "The export %q already has an appimage block at %s.", e.Name, pos(blocks[0].DefRange))
			continue
		}
		content, diags := b.Body.Content(appImageSchema)
		l.diags = append(l.diags, diags...)
		a := &AppImage{Name: e.Name, Categories: []string{"Utility"}}
		if v, set, ok := l.evalString(content.Attributes["name"]); ok && set {
			if strings.ContainsAny(v, "\n\r") || v == "" {
				l.errorf(content.Attributes["name"].Expr.Range().Ptr(), "Invalid appimage name", "The name %q is not one line of text.", v)
			}
			a.Name = v
		}
		if list, set, ok := l.stringList(content.Attributes["categories"]); ok && set {
			a.Categories = list
		}
		if attr := content.Attributes["runtime"]; attr != nil {
			if v, set, ok := l.evalString(attr); ok && set {
				a.Runtime = l.runtimeFile(attr, v)
			}
		}
		e.AppImage = a
	}
	if block.Required && len(blocks) == 0 {
		l.errorf(d.block.DefRange.Ptr(), "Missing appimage block", "The export %q has format %q, which needs an appimage block with its runtime.", e.Name, e.Format)
	}
}

// runtimeFile is where the runtime p is read: a store path under the
// store's root, a file relative to the spec folder; it must be a regular
// file.
func (l *loader) runtimeFile(a *hcl.Attribute, p string) string {
	full := p
	if l.store.ok && strings.HasPrefix(p, string(l.store.value.Dir)+"/") {
		if msg := l.checkInside(p); msg != "" {
			l.errorf(a.Expr.Range().Ptr(), "Invalid appimage runtime", "%s.", upperFirst(msg))
			return ""
		}
		full = filepath.Join(l.store.value.Root, p)
	} else if !filepath.IsAbs(p) {
		full = filepath.Join(l.absDir, p)
	}
	fi, err := os.Stat(full)
	if err != nil || !fi.Mode().IsRegular() {
		l.errorf(a.Expr.Range().Ptr(), "Invalid appimage runtime", "The runtime %s is not a file (relative paths start at the spec folder).", p)
		return ""
	}
	return full
}
