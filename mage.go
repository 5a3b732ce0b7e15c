//go:build ignore

// Zero-install mage: `go run mage.go TARGET` runs this repository's
// magefile.go targets without a mage binary.
package main

import (
	"os"

	"github.com/magefile/mage/mage"
)

func main() { os.Exit(mage.Main()) }
