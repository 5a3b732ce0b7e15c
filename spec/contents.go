package spec

import (
	"fmt"
	"math/big"
	"os"
	"path"
	"regexp"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/internal/base"
	"github.com/storepack/storepack/store"
)

// Account is an account block: a user and its group in /etc/passwd and
// /etc/group, and its home folder, owned by it.
type Account struct {
	Name string
	UID  int
	GID  int
	Home string
}

// File is a file block: a file of the spec's own in the tree, with its
// contents (from content, or read from source when the spec loads).
type File struct {
	// Path is absolute, in the tree.
	Path string
	// Content is the file's bytes; Source the file they were read from
	// (absolute), or "" for content.
	Content string `json:",omitempty"`
	Source  string `json:",omitempty"`
	Mode    uint32
	UID     int
	GID     int
}

// MaxFileSize is the largest file block, and the most file() reads: their
// contents are held in the plan.
const MaxFileSize = 16 << 20

// The accounts storepack always writes when it writes /etc/passwd.
var reservedAccounts = map[string]int{"root": 0, "nobody": 65534}

var (
	accountSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "uid", Required: true}, {Name: "gid"}, {Name: "home"},
	}}
	fileBlockSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "content"}, {Name: "source"}, {Name: "mode"}, {Name: "uid"}, {Name: "gid"},
	}}
	accountName = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`)
	numericUser = regexp.MustCompile(`^[0-9]+(:[0-9]+)?$`)
)

// IsTreePath reports whether p can name an entry of a tree (a symlink, a
// file block, a home folder): a clean absolute path below /.
func IsTreePath(p string) bool { return path.IsAbs(p) && path.Clean(p) == p && p != "/" }

// accounts decodes the account blocks of an export.
func (l *loader) accounts(d *exportDecl, blocks hcl.Blocks) {
	e := &d.e
	seen := map[string]hcl.Range{}
	for _, b := range blocks {
		if _, ok := e.Format.Def().Block("account"); !ok {
			l.errorf(b.DefRange.Ptr(), "Block only for "+formatsLabel(format.TakingBlock("account")), "An account block adds a user to /etc/passwd of images and file system trees; the export %q has format %q.", e.Name, e.Format)
			continue
		}
		name := b.Labels[0]
		switch {
		case !accountName.MatchString(name):
			l.errorf(b.LabelRanges[0].Ptr(), "Invalid account name", "%q is not an account name: lower-case letters, digits, '_' and '-', starting with a letter or '_', at most 32.", name)
			continue
		case reservedAccounts[name] != 0 || name == "root":
			l.errorf(b.LabelRanges[0].Ptr(), "Reserved account name", "%q is always in /etc/passwd; choose another name.", name)
			continue
		}
		if prev, ok := seen[name]; ok {
			l.errorf(b.LabelRanges[0].Ptr(), "Duplicate account", "The account %q is already defined at %s.", name, pos(prev))
			continue
		}
		seen[name] = b.DefRange
		content, diags := b.Body.Content(accountSchema)
		l.diags = append(l.diags, diags...)
		a := Account{Name: name, Home: "/home/" + name}
		uid, uok := l.id(content.Attributes["uid"], "uid")
		a.UID = uid
		a.GID = uid
		if g := content.Attributes["gid"]; g != nil {
			a.GID, _ = l.id(g, "gid")
		}
		if h, set, ok := l.evalString(content.Attributes["home"]); ok && set {
			if !IsTreePath(h) {
				l.errorf(content.Attributes["home"].Expr.Range().Ptr(), "Invalid home", "home %q is not a clean absolute path below /.", h)
			}
			a.Home = h
		}
		if uok {
			e.Accounts = append(e.Accounts, a)
		}
	}
}

// id decodes a uid or gid: a whole number from 0 to 2^31-1.
func (l *loader) id(a *hcl.Attribute, what string) (int, bool) {
	if a == nil {
		return 0, false
	}
	v, ok := l.evalAs(a, cty.Number)
	if !ok || v.IsNull() {
		return 0, false
	}
	bf := v.AsBigFloat()
	n, acc := bf.Int64()
	if !bf.IsInt() || acc != big.Exact || n < 0 || n > 1<<31-1 {
		l.errorf(a.Expr.Range().Ptr(), "Invalid "+what, "%s is a whole number from 0 to 2147483647, not %s.", what, bf.Text('g', -1))
		return 0, false
	}
	return int(n), true
}

// fileBlocks decodes the file blocks of an export.
func (l *loader) fileBlocks(d *exportDecl, blocks hcl.Blocks) {
	e := &d.e
	seen := map[string]hcl.Range{}
	for _, b := range blocks {
		if _, ok := e.Format.Def().Block("file"); !ok {
			l.errorf(b.DefRange.Ptr(), "Block only for "+formatsLabel(format.TakingBlock("file")), "A file block adds a file to images and file system trees; the export %q has format %q.", e.Name, e.Format)
			continue
		}
		p := b.Labels[0]
		if !IsTreePath(p) {
			l.errorf(b.LabelRanges[0].Ptr(), "Invalid file path", "%q is not a clean absolute path below /.", p)
			continue
		}
		if prev, ok := seen[p]; ok {
			l.errorf(b.LabelRanges[0].Ptr(), "Duplicate file", "The file %s is already defined at %s.", p, pos(prev))
			continue
		}
		seen[p] = b.DefRange
		content, diags := b.Body.Content(fileBlockSchema)
		l.diags = append(l.diags, diags...)
		f := File{Path: p, Mode: 0o644}
		ca, sa := content.Attributes["content"], content.Attributes["source"]
		switch {
		case ca != nil && sa != nil:
			l.errorf(sa.NameRange.Ptr(), "Both content and source", "A file block takes content or source, not both.")
			continue
		case ca == nil && sa == nil:
			l.errorf(b.DefRange.Ptr(), "No content", "A file block needs content = \"...\" or source = \"path\".")
			continue
		case ca != nil:
			c, _, ok := l.evalString(ca)
			if !ok {
				continue
			}
			if len(c) > MaxFileSize {
				l.errorf(ca.Expr.Range().Ptr(), "File too large", "The content of %s is %d bytes; file blocks hold at most %d (%d MiB): put larger files in a source block.", p, len(c), MaxFileSize, MaxFileSize>>20)
				continue
			}
			f.Content = c
		default:
			src, set, ok := l.evalString(sa)
			if !ok || !set {
				continue
			}
			f.Source = l.absPath(src)
			c, err := readFileBlock(f.Source)
			if err != nil {
				l.errorf(sa.Expr.Range().Ptr(), "Invalid source", "%v.", err)
				continue
			}
			f.Content = c
		}
		if m, set, ok := l.evalString(content.Attributes["mode"]); ok && set {
			v, err := strconv.ParseUint(m, 8, 32)
			if err != nil || v > 0o7777 || !strings.HasPrefix(m, "0") {
				l.errorf(content.Attributes["mode"].Expr.Range().Ptr(), "Invalid mode", "mode is an octal string such as \"0644\" or \"0755\", not %q.", m)
			} else {
				f.Mode = uint32(v)
			}
		}
		if u := content.Attributes["uid"]; u != nil {
			f.UID, _ = l.id(u, "uid")
		}
		if g := content.Attributes["gid"]; g != nil {
			f.GID, _ = l.id(g, "gid")
		}
		e.Files = append(e.Files, f)
	}
}

// readFileBlock reads a file block's source: a regular file (symlinks
// followed) of at most MaxFileSize bytes.
func readFileBlock(p string) (string, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return "", err
	}
	if !fi.Mode().IsRegular() {
		kind := "a special file"
		switch t := fi.Mode().Type(); {
		case t&os.ModeDir != 0:
			kind = "a folder"
		case t&os.ModeNamedPipe != 0:
			kind = "a named pipe"
		case t&os.ModeSocket != 0:
			kind = "a socket"
		case t&os.ModeDevice != 0:
			kind = "a device"
		}
		return "", fmt.Errorf("%s is %s, not a regular file", p, kind)
	}
	if fi.Size() > MaxFileSize {
		return "", fmt.Errorf("%s is %d bytes; file blocks hold at most %d (%d MiB): add larger files as a source block", p, fi.Size(), MaxFileSize, MaxFileSize>>20)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return "", err
	}
	if len(b) > MaxFileSize {
		return "", fmt.Errorf("%s grew past %d bytes while read", p, MaxFileSize)
	}
	return string(b), nil
}

// checkUser checks an image's user against the accounts: "uid[:gid]",
// root, nobody or an account's name.
func (l *loader) checkUser(d *exportDecl) {
	e := &d.e
	u := e.Image.User
	if u == "" || numericUser.MatchString(u) || e.Image.Base != "" {
		return // a base has accounts of its own
	}
	name, _, _ := strings.Cut(u, ":")
	if _, ok := reservedAccounts[name]; ok {
		return
	}
	for _, a := range e.Accounts {
		if a.Name == name {
			return
		}
	}
	var names []string
	for _, a := range e.Accounts {
		names = append(names, a.Name)
	}
	hint := "the export has no account block"
	if len(names) > 0 {
		hint = "its accounts are " + strings.Join(names, ", ")
	}
	l.errorf(d.attrs["user"].Expr.Range().Ptr(), "Unknown user", "user %q names no account: give \"uid[:gid]\", root, nobody or the name of an account block (%s).", u, hint)
}

var layerSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "paths", Required: true}}}

// layerBlocks decodes the layer blocks of an image: a name used once, and
// paths no other block lists.
func (l *loader) layerBlocks(d *exportDecl, blocks hcl.Blocks) {
	e := &d.e
	names := map[string]hcl.Range{}
	listed := map[store.Path]string{}
	for _, b := range blocks {
		if _, ok := e.Format.Def().Block("layer"); !ok {
			l.errorf(b.DefRange.Ptr(), "Block only for "+formatsLabel(format.TakingBlock("layer")), "A layer block chooses the store items of one image layer; the export %q has format %q.", e.Name, e.Format)
			continue
		}
		name := b.Labels[0]
		if prev, ok := names[name]; ok {
			l.errorf(b.LabelRanges[0].Ptr(), "Duplicate layer", "The layer %q is already defined at %s.", name, pos(prev))
			continue
		}
		names[name] = b.DefRange
		content, diags := b.Body.Content(layerSchema)
		l.diags = append(l.diags, diags...)
		a := content.Attributes["paths"]
		if a == nil {
			continue
		}
		paths, _, ok := l.storePaths(a)
		if !ok {
			continue
		}
		lb := LayerBlock{Name: name}
		for _, p := range paths {
			if other, ok := listed[p]; ok {
				l.errorf(a.Expr.Range().Ptr(), "Path in two layers", "%s is in the layer %q already: a store item belongs to one layer block.", p, other)
				continue
			}
			listed[p] = name
			lb.Paths = append(lb.Paths, p)
		}
		e.Image.Layers = append(e.Image.Layers, lb)
	}
	if len(e.Image.Layers) > 0 && e.Image.MaxLayers < len(e.Image.Layers)+1 {
		l.errorf(blocks[0].DefRange.Ptr(), "Too many layer blocks", "%d layer blocks and the layer of folders and symlinks need max_layers of at least %d; it is %d.", len(e.Image.Layers), len(e.Image.Layers)+1, e.Image.MaxLayers)
	}
}

// baseRef decodes an image's base: local ones get absolute paths.
func (l *loader) baseRef(d *exportDecl) {
	e, a := &d.e, d.attrs["base"]
	ref, set, ok := l.evalString(a)
	if !ok || !set {
		return
	}
	switch {
	case strings.HasPrefix(ref, "oci:"):
		dir, tag, hasTag := strings.Cut(strings.TrimPrefix(ref, "oci:"), ":")
		if dir != "" {
			ref = "oci:" + l.absPath(dir)
			if hasTag {
				ref += ":" + tag
			}
		}
	case strings.HasPrefix(ref, "docker-archive:"):
		if f := strings.TrimPrefix(ref, "docker-archive:"); f != "" {
			ref = "docker-archive:" + l.absPath(f)
		}
	}
	if err := base.CheckRef(ref, base.Options{Insecure: e.Insecure}); err != nil {
		l.errorf(a.Expr.Range().Ptr(), "Invalid base", "base is a registry reference pinned by digest (registry/name@sha256:...), oci:DIR[:TAG] or docker-archive:FILE: %v.", err)
		return
	}
	e.Image.Base = ref
}
