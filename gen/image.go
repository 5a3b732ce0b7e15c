package gen

import (
	"errors"

	"github.com/storepack/storepack/spec"
)

// Image is the plan of one image: platform, layers, config and manifest.
type Image struct{}

// planImage plans the image of one system of a docker or oci export.
func planImage(e *spec.Export, sys *System) (*Image, error) {
	return nil, errors.New("the " + e.Format + " format is not implemented yet")
}
