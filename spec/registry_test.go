package spec

// The tests load specs of every format: package export registers them.
import _ "github.com/storepack/storepack/export"
