package spec

import "github.com/storepack/storepack/internal/platform"

// Systems are the Guix/Nix system names an export may target: those with
// an image platform.
func Systems() []string { return platform.Systems() }

// KnownSystem reports whether name is one of Systems.
func KnownSystem(name string) bool { return platform.Known(name) }

// HostSystem is the system name of the machine storepack runs on, and
// whether it is one of Systems.
func HostSystem() (string, bool) { return platform.Host() }
