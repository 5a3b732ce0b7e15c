package tree

import "github.com/storepack/storepack/internal/fixture"

// The tests plan images of a stand-in format: this package sits below
// the registry of the real ones.
func init() { fixture.StandIns() }
