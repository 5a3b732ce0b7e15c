package gen

import (
	"errors"
	"fmt"
	"os"
	"path"
	"slices"
	"strings"
	"syscall"

	"github.com/storepack/storepack/internal/platform"
	"github.com/storepack/storepack/plan"
	"github.com/storepack/storepack/spec"
	"github.com/storepack/storepack/store"
)

// PlanTree plans the output of sys, one system of export e (a file system
// tree format), whose Name, Roots and Closure are set: Generate calls it
// for every tree. The tree holds the closure at its store paths, the
// store folder's parents, the symlinks, the store database when asked for
// and, for formats that run a program (squashfs), the runtime's files and
// mount points.
func PlanTree(e *spec.Export, sys *plan.System) (*plan.TreeOutput, error) {
	if len(sys.Closure) == 0 {
		return nil, errors.New("tree of an empty closure")
	}
	def := e.Format.Def()
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
	fixed := storeParents(storeDir)
	if e.Database {
		fixed = append(fixed, databaseEntry(storeDir))
	}
	if def.Runs {
		run, err := runtimeEntries(e, ss, items)
		if err != nil {
			return nil, err
		}
		fixed = append(fixed, run...)
	}
	contents, err := contentEntries(e, storeDir)
	if err != nil {
		return nil, err
	}
	fixed = append(fixed, contents...)
	entries, err := treeEntries(fixed, links, storeDir)
	if err != nil {
		return nil, err
	}
	out := &plan.TreeOutput{Created: created, Compression: e.Compression}
	out.Entries = entries
	for i := range sys.Closure {
		out.Items = append(out.Items, sys.Closure[i].Path)
	}
	out.Items = store.SortPaths(out.Items)
	if def.Package {
		if e.Package == nil {
			return nil, fmt.Errorf("format %s needs a package block", e.Format)
		}
		plat, err := platform.Lookup(sys.Name)
		if err != nil {
			return nil, err
		}
		p := *e.Package
		out.Package = &plan.Package{Name: p.Name, Version: p.Version, Release: p.Release, Architecture: def.PackageArch(plat),
			Maintainer: p.Maintainer, Description: p.Description, License: p.License, Homepage: p.Homepage}
		if out.Package.Architecture == "" {
			return nil, fmt.Errorf("system %s has no %s architecture", sys.Name, e.Format)
		}
		if strings.TrimSpace(out.Package.Description) == "" {
			var roots []string
			for _, r := range sys.Roots {
				roots = append(roots, r.Base())
			}
			out.Package.Description = "the store closure of " + strings.Join(roots, ", ")
		}
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
	if e.Format.Def().Installs {
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

// The runtime's files in trees that run a program (squashfs), where
// Apptainer and Singularity look for them.
const (
	runscriptPath   = "/.singularity.d/runscript"
	environmentPath = "/.singularity.d/env/90-environment.sh"
)

// mountPoints are the folders a container runtime mounts over or fills
// (Apptainer's action scripts and libraries).
var mountPoints = []plan.Entry{
	{Path: "/.singularity.d/actions", Type: plan.EntryDirectory, Mode: 0o755},
	{Path: "/.singularity.d/libs", Type: plan.EntryDirectory, Mode: 0o755},
	{Path: "/dev", Type: plan.EntryDirectory, Mode: 0o755},
	{Path: "/etc", Type: plan.EntryDirectory, Mode: 0o755},
	{Path: "/home", Type: plan.EntryDirectory, Mode: 0o755},
	{Path: "/proc", Type: plan.EntryDirectory, Mode: 0o755},
	{Path: "/sys", Type: plan.EntryDirectory, Mode: 0o755},
	{Path: "/tmp", Type: plan.EntryDirectory, Mode: 0o1777},
}

// runtimeEntries are what Apptainer and Singularity need in a tree that
// runs a program: the mount points, /.singularity.d/env/90-environment.sh
// exporting the spec's env, and /.singularity.d/runscript, which execs the
// entry point and cmd with the arguments it is given (none when both are
// empty). The scripts run with the closure's first bin/sh, by path, when
// it has one, so that they also run under a plain chroot; else /bin/sh.
func runtimeEntries(e *spec.Export, ss *spec.System, items map[store.Path]*plan.Item) ([]plan.Entry, error) {
	entrypoint, cmd := e.Entrypoint, e.Cmd
	if ss != nil && ss.Entrypoint != nil {
		entrypoint = ss.Entrypoint
	}
	if ss != nil && ss.Cmd != nil {
		cmd = ss.Cmd
	}
	sh, err := closureShell(items)
	if err != nil {
		return nil, err
	}
	out := slices.Clone(mountPoints)
	var env strings.Builder
	fmt.Fprintf(&env, "#!%s\n", sh)
	keys := make([]string, 0, len(e.Env))
	for k := range e.Env {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !shellName(k) {
			return nil, fmt.Errorf("env %q: not a name a shell can export", k)
		}
		fmt.Fprintf(&env, "export %s=%s\n", k, shellQuote(e.Env[k]))
	}
	out = append(out, plan.Entry{Path: environmentPath, Type: plan.EntryFile, Mode: 0o755, Content: env.String()})
	if args := append(slices.Clone(entrypoint), cmd...); len(args) > 0 {
		var run strings.Builder
		fmt.Fprintf(&run, "#!%s\n", sh)
		if len(keys) > 0 {
			fmt.Fprintf(&run, ". %s\n", environmentPath)
		}
		run.WriteString("exec")
		for _, a := range args {
			run.WriteString(" " + shellQuote(a))
		}
		run.WriteString(" \"$@\"\n")
		out = append(out, plan.Entry{Path: runscriptPath, Type: plan.EntryFile, Mode: 0o755, Content: run.String()})
	}
	return out, nil
}

// closureShell is the first item's bin/sh, by path, among items, or
// /bin/sh when none has one.
func closureShell(items map[store.Path]*plan.Item) (string, error) {
	paths := make([]store.Path, 0, len(items))
	for p := range items {
		paths = append(paths, p)
	}
	for _, p := range store.SortPaths(paths) {
		fi, err := os.Stat(items[p].FSPath + "/bin/sh")
		switch {
		case err == nil && fi.Mode().IsRegular():
			return string(p) + "/bin/sh", nil
		case err != nil && !errors.Is(err, os.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR):
			return "", fmt.Errorf("%s: %w", p, err)
		}
	}
	return "/bin/sh", nil
}

// shellName reports whether k is a name a POSIX shell can export.
func shellName(k string) bool {
	for i, c := range k {
		if !(c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return k != ""
}

// shellQuote quotes s for a POSIX shell: in single quotes, where each
// single quote of s ends the quoting, is escaped with a backslash, and the
// quoting starts again.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
