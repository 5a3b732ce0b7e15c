package gen

import (
	"github.com/storepack/storepack/internal/platform"
	"github.com/storepack/storepack/plan"
	"github.com/storepack/storepack/spec"
	"github.com/storepack/storepack/store"
)

// A TreePlanner is a tree format that plans what it alone needs of each
// system's tree output (a runtime's files, a package's metadata). PlanTree
// gets the output with its time, compression and items set, may complete
// it, and returns the entries it adds to the tree, which are placed with
// the spec's (their folders made, a clash an error).
type TreePlanner interface {
	PlanTree(t *plan.TreeOutput, s *plan.Settings) ([]plan.Entry, error)
}

// An OutputNamer is a per-system format that names each system's output
// from its plan when the spec names none (rpm: NAME-VERSION-RELEASE.ARCH.rpm,
// as rpmbuild names packages).
type OutputNamer interface {
	OutputName(sys *plan.System) string
}

// An ImagePlanner is an image format that plans what it alone needs of
// each system's image, once gen has planned what every image has.
type ImagePlanner interface {
	PlanImage(img *plan.Image, s *plan.Settings) error
}

// settings are what export e asks of system sys, in the plan's terms, for
// its format's own planning.
func settings(e *spec.Export, ss *spec.System, sys *plan.System, items map[store.Path]*plan.Item) (*plan.Settings, error) {
	plat, err := platform.Lookup(sys.Name)
	if err != nil {
		return nil, err
	}
	s := &plan.Settings{Export: e.Name, System: sys.Name, Platform: plat, Roots: sys.Roots, Items: items,
		Entrypoint: e.Entrypoint, Cmd: e.Cmd, Env: e.Env, Profile: sys.Profile, Relocatable: e.Relocatable}
	if a := e.AppImage; a != nil {
		s.AppImage = &plan.AppImage{Runtime: a.Runtime, Name: a.Name, Categories: a.Categories}
	}
	if ss != nil && ss.Entrypoint != nil {
		s.Entrypoint = ss.Entrypoint
	}
	if ss != nil && ss.Cmd != nil {
		s.Cmd = ss.Cmd
	}
	if p := e.Package; p != nil {
		s.Package = &plan.Package{Name: p.Name, Version: p.Version, Release: p.Release,
			Maintainer: p.Maintainer, Description: p.Description, License: p.License, Homepage: p.Homepage,
			Section: p.Section, Priority: p.Priority, Scripts: p.Scripts}
	}
	return s, nil
}
