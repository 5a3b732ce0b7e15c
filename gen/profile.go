package gen

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/storepack/storepack/export/relocate"
	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/plan"
	"github.com/storepack/storepack/spec"
	"github.com/storepack/storepack/store"
	"github.com/storepack/storepack/store/profile"
)

// ProfileDir is where Generate writes profiles, from where the writers
// read them, when its Dirs name no folder: the storepack cache folder's
// profiles/ (docs/cache.md); a variable so that tests can move it.
var ProfileDir = func() (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("profiles: %w", err)
	}
	return filepath.Join(base, "storepack", "profiles"), nil
}

// profileLinks are the links a store database's tree gets to the
// profile, by store folder: where Guix and Nix look for the default
// profile.
var profileLinks = map[store.Dir]string{
	"/gnu/store": "/var/guix/profiles/per-user/root/guix-profile",
	"/nix/store": "/nix/var/nix/profiles/default",
}

// addProfile builds the profile of ss's paths (in the spec's order),
// appends it to sys's closure and returns the export and system as they
// read with it (withProfile). Substituted items are fetched first: the
// profile reads their files.
func (g *generator) addProfile(e *spec.Export, ss *spec.System, sys *plan.System) (*spec.Export, *spec.System, error) {
	if len(g.substituted) > 0 {
		if err := g.sub.FetchAll(g.ctx, g.substituted); err != nil {
			return nil, nil, err
		}
		g.substituted = nil
	}
	var inputs []profile.Input
	for _, p := range ss.Paths {
		if slices.ContainsFunc(inputs, func(in profile.Input) bool { return in.Path == p }) {
			continue
		}
		it, err := g.item(p)
		if err != nil {
			return nil, nil, err
		}
		inputs = append(inputs, profile.Input{Path: p, FSPath: it.FSPath})
	}
	dir := g.profileDir
	if dir == "" {
		var err error
		if dir, err = ProfileDir(); err != nil {
			return nil, nil, err
		}
	}
	resolve := func(p store.Path) (string, bool) {
		if it, ok := g.items[p]; ok {
			return it.FSPath, true
		}
		return "", false
	}
	opts := profile.Options{AllowCollisions: e.Profile.AllowCollisions, Resolve: resolve}
	if e.Relocatable {
		w, err := relocate.ForSystem(ss.Name)
		if err != nil {
			return nil, nil, err
		}
		opts.Wrap = func(program string) ([]byte, error) { return relocate.Wrap(w, g.spec.Store.Dir, program) }
	}
	prof, err := profile.Build(g.spec.Store.Dir, inputs, dir, opts)
	if err != nil {
		return nil, nil, err
	}
	it := &plan.Item{Path: prof.Path, NarHash: store.Hash(prof.NarHash), NarSize: prof.NarSize, References: prof.References, FSPath: prof.FSPath}
	g.items[prof.Path] = it
	sys.Closure = append(sys.Closure, *it)
	sys.Profile = prof.Path
	for _, v := range prof.Vars {
		sys.ProfileEnv = append(sys.ProfileEnv, v.Name+"="+v.Value(prof.Path))
	}
	we, wss := withProfile(e, ss, prof, g.spec.Store.Dir)
	return we, wss, nil
}

// relativeLink is target, an absolute path, relative to the folder of
// link, an absolute path: what leads from link to target inside a tree
// unpacked anywhere.
func relativeLink(link, target string) string {
	if !strings.HasPrefix(target, "/") {
		return target
	}
	rel, err := filepath.Rel(filepath.Dir(link), target)
	if err != nil {
		return target
	}
	return rel
}

// withProfile is e and ss as they read with the profile p: relative
// symlink targets and entry points inside it (as guix pack's -S and
// --entry-point), its search paths in env (the spec's env winning by
// name, in an image's config), the pack's symlinks relative when it is
// relocatable, /bin linked to its bin by default, and with a store database the
// Guix or Nix default profile linked to it.
func withProfile(e *spec.Export, ss *spec.System, p *profile.Profile, dir store.Dir) (*spec.Export, *spec.System) {
	we := *e
	inside := func(target string) string {
		if target == "" || strings.HasPrefix(target, "/") {
			return target
		}
		return string(p.Path) + "/" + target
	}
	resolveEntry := func(ep []string) []string {
		if len(ep) == 0 {
			return ep
		}
		out := slices.Clone(ep)
		out[0] = inside(out[0])
		return out
	}
	we.Entrypoint = resolveEntry(e.Entrypoint)
	if e.Symlinks != nil {
		we.Symlinks = map[string]string{}
		for link, target := range e.Symlinks {
			we.Symlinks[link] = inside(target)
		}
	} else if e.Format.Def().BinLink {
		// bin is a folder of the profile, or its link to one path's bin.
		if _, err := os.Lstat(filepath.Join(p.FSPath, "bin")); err == nil {
			we.Symlinks = map[string]string{"/bin": string(p.Path) + "/bin"}
		}
	}
	if e.Database {
		if link, ok := profileLinks[dir]; ok {
			if we.Symlinks == nil { // else a map of its own, made above
				we.Symlinks = map[string]string{}
			}
			if _, set := we.Symlinks[link]; !set {
				we.Symlinks[link] = string(p.Path)
			}
		}
	}
	if len(p.Vars) > 0 && e.Format.Kind() == format.Image {
		we.Env = map[string]string{}
		for _, v := range p.Vars {
			we.Env[v.Name] = v.Value(p.Path)
		}
		maps.Copy(we.Env, e.Env)
	}
	if e.Relocatable {
		// The pack's own links relative, so that they lead into the pack
		// wherever it is unpacked.
		for link, target := range we.Symlinks {
			we.Symlinks[link] = relativeLink(link, target)
		}
	}
	we.Systems = slices.Clone(e.Systems)
	var wss *spec.System
	for i := range we.Systems {
		we.Systems[i].Entrypoint = resolveEntry(we.Systems[i].Entrypoint)
		if we.Systems[i].Name == ss.Name {
			wss = &we.Systems[i]
		}
	}
	return &we, wss
}
