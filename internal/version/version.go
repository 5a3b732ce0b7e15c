// Package version is storepack's own version, as the Go build recorded it:
// the module version of a `go install ...@vX` build, the VCS revision of a
// build from a checkout, else "devel". SBOMs and provenance name it.
package version

import (
	"runtime/debug"
	"sync"
)

// Get returns storepack's version.
var Get = sync.OnceValue(func() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			return "devel-" + s.Value[:12]
		}
	}
	return "devel"
})
