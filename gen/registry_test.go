package gen

// The tests load specs of every format: package export registers them.
import _ "github.com/storepack/storepack/export"
