package gen

import (
	"errors"
	"fmt"
	"os"
	"path"
	"slices"
	"strings"
	"syscall"

	"github.com/storepack/storepack/plan"
	"github.com/storepack/storepack/spec"
	"github.com/storepack/storepack/store"
)

// PlanTree plans the output of sys, one system of export e (a file system
// tree format), whose Name, Roots and Closure are set: Generate calls it
// for every tree. The tree holds the closure at its store paths, the
// store folder's parents, the symlinks, the store database when asked for,
// the accounts and files, and what the format's own planning adds (a
// TreePlanner: a runtime's files, a package's metadata).
func PlanTree(e *spec.Export, sys *plan.System) (*plan.TreeOutput, error) {
	if len(sys.Closure) == 0 {
		return nil, errors.New("tree of an empty closure")
	}
	created, err := e.CreatedTime()
	if err != nil {
		return nil, err
	}
	items := plan.Items(sys.Closure)
	storeDir := sys.Closure[0].Path.Dir()
	ss := specSystem(e, sys.Name)
	links, err := symlinks(e, ss, sys, items, storeDir)
	if err != nil {
		return nil, err
	}
	out := &plan.TreeOutput{Created: created, Compression: e.Compression}
	for i := range sys.Closure {
		out.Items = append(out.Items, sys.Closure[i].Path)
	}
	out.Items = store.SortPaths(out.Items)
	fixed := storeParents(storeDir)
	if e.Database {
		fixed = append(fixed, databaseEntry(storeDir))
	}
	if tp, ok := e.Format.Entry().(TreePlanner); ok {
		s, err := settings(e, ss, sys, items)
		if err != nil {
			return nil, err
		}
		own, err := tp.PlanTree(out, s)
		if err != nil {
			return nil, err
		}
		fixed = append(fixed, own...)
	}
	contents, err := contentEntries(e, storeDir)
	if err != nil {
		return nil, err
	}
	fixed = append(fixed, contents...)
	if out.Entries, err = treeEntries(fixed, links, storeDir); err != nil {
		return nil, err
	}
	return out, nil
}

// databaseEntry is the store database of a tree of items of store folder
// d, where the store's daemons look for it.
func databaseEntry(d store.Dir) plan.Entry {
	return plan.Entry{Path: store.TreeDB(d), Type: plan.EntryDatabase, Mode: 0o644}
}

// storeParents are the folders above the store's items: /gnu and
// /gnu/store for /gnu/store, at 0755.
func storeParents(d store.Dir) []plan.Entry {
	var out []plan.Entry
	for p := string(d); p != "/"; p = path.Dir(p) {
		out = append(out, plan.Entry{Path: p, Type: plan.EntryDirectory, Mode: 0o755})
	}
	slices.Reverse(out)
	return out
}

// symlinks is the spec's symlinks, or the default: /bin to the first
// path's bin when it is a folder (or a symlink) in that store item, but
// none for formats that install into an existing root (deb, rpm).
func symlinks(e *spec.Export, ss *spec.System, sys *plan.System, items map[store.Path]*plan.Item, storeDir store.Dir) (map[string]string, error) {
	if e.Symlinks != nil {
		for link, target := range e.Symlinks {
			if !strings.HasPrefix(target, string(storeDir)+"/") {
				continue
			}
			item, _, err := storeDir.ParseInside(target)
			if err != nil {
				return nil, fmt.Errorf("symlink %s -> %s: %w", link, target, err)
			}
			if _, ok := items[item]; !ok {
				return nil, fmt.Errorf("symlink %s -> %s: %s is not in the closure", link, target, item)
			}
		}
		return e.Symlinks, nil
	}
	if !e.Format.Def().BinLink {
		return nil, nil
	}
	var first store.Path
	if ss != nil && len(ss.Paths) > 0 {
		first = ss.Paths[0]
	} else if len(sys.Roots) > 0 {
		first = sys.Roots[0]
	}
	it, ok := items[first]
	if !ok {
		return nil, nil
	}
	fi, err := os.Lstat(it.FSPath + "/bin")
	if err != nil {
		// No bin folder, or a first root that is a file, not a folder.
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return nil, nil
		}
		return nil, fmt.Errorf("%s: %w", first, err)
	}
	if !fi.IsDir() && fi.Mode()&os.ModeSymlink == 0 {
		return nil, nil
	}
	return map[string]string{"/bin": string(first) + "/bin"}, nil
}

// treeEntries lists the entries of a tree besides its items: the fixed
// entries the tree needs (the store's parents, /tmp, files; of a folder
// listed twice, the last), the symlinks, and the folders above both
// (0755), sorted by path.
func treeEntries(fixed []plan.Entry, links map[string]string, storeDir store.Dir) ([]plan.Entry, error) {
	byPath := map[string]plan.Entry{}
	// addParents adds the folders above p; a symlink above a link is an
	// error (one above a fixed entry is when the link is added).
	addParents := func(p string, isLink bool) error {
		for dir := path.Dir(p); dir != "/"; dir = path.Dir(dir) {
			if _, ok := links[dir]; ok && isLink {
				return fmt.Errorf("%s is inside symlink %s", p, dir)
			}
			if e, ok := byPath[dir]; ok {
				if e.Type != plan.EntryDirectory {
					return fmt.Errorf("%s is inside %s, which is a %s", p, dir, e.Type)
				}
				continue
			}
			byPath[dir] = plan.Entry{Path: dir, Type: plan.EntryDirectory, Mode: 0o755}
		}
		return nil
	}
	for _, e := range fixed {
		// A folder given twice takes its last mode (/tmp, 1777, when the
		// store folder is below /tmp).
		if prev, ok := byPath[e.Path]; ok && (prev.Type != plan.EntryDirectory || e.Type != plan.EntryDirectory) {
			return nil, fmt.Errorf("%s is in the tree twice", e.Path)
		}
		byPath[e.Path] = e
	}
	for _, e := range fixed {
		if err := addParents(e.Path, false); err != nil {
			return nil, err
		}
	}
	linkPaths := make([]string, 0, len(links))
	for l := range links {
		linkPaths = append(linkPaths, l)
	}
	slices.Sort(linkPaths)
	for _, l := range linkPaths {
		switch {
		case !spec.IsTreePath(l):
			return nil, fmt.Errorf("symlink %q: not a clean absolute path below /", l)
		case l == "/tmp" || strings.HasPrefix(l, "/tmp/"):
			return nil, fmt.Errorf("symlink %s: /tmp is the temporary folder", l)
		case l == string(storeDir) || strings.HasPrefix(l, string(storeDir)+"/"):
			return nil, fmt.Errorf("symlink %s: inside the store folder %s", l, storeDir)
		case links[l] == "":
			return nil, fmt.Errorf("symlink %s: empty target", l)
		}
		if e, ok := byPath[l]; ok {
			kind := e.Type
			if kind == plan.EntryDirectory {
				kind = "folder"
			}
			return nil, fmt.Errorf("symlink %s: the tree needs %s as a %s", l, e.Path, kind)
		}
		if err := addParents(l, true); err != nil {
			return nil, fmt.Errorf("symlink %w", err)
		}
		byPath[l] = plan.Entry{Path: l, Type: plan.EntrySymlink, Mode: 0o777, Target: links[l]}
	}
	out := make([]plan.Entry, 0, len(byPath))
	for _, e := range byPath {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b plan.Entry) int { return strings.Compare(a.Path, b.Path) })
	return out, nil
}
