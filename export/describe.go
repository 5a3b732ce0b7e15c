package export

import (
	"fmt"

	"github.com/storepack/storepack/export/image"
	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/plan"
)

// Description is a plan with what writing it computes about its images:
// each image's layer digests, config and manifests (image.Image). It
// marshals to the JSON that `storepack plan` prints: the plan's own
// fields, each system's image in the form image.Image.MarshalJSON gives.
type Description struct {
	*plan.Plan
	Exports []ExportDescription `json:"exports"`
}

// ExportDescription is one export of a Description.
type ExportDescription struct {
	*plan.Export
	Systems []SystemDescription `json:"systems"`
}

// SystemDescription is one system of an ExportDescription, with its image
// for images.
type SystemDescription struct {
	*plan.System
	Image *image.Image `json:"image,omitempty"`
}

// Describe computes the digests of every image of plan by streaming their
// layers into the hashes (reading every store file of the images, but
// those of the layers o.Cache has records of), and returns the plan with
// them. Nothing is written but records in the cache.
func Describe(plan *plan.Plan, o Options) (*Description, error) {
	d := &Description{Plan: plan}
	for i := range plan.Exports {
		e := &plan.Exports[i]
		var imgs []*image.Image
		if e.Format.Kind() == format.Image {
			var err error
			if imgs, err = image.Digest(e, o.Cache); err != nil {
				return nil, fmt.Errorf("export %q: %w", e.Name, err)
			}
		}
		d.Exports = append(d.Exports, describeExport(e, imgs))
	}
	return d, nil
}

// describeExport is e with imgs, its systems' images (nil for other
// formats).
func describeExport(e *plan.Export, imgs []*image.Image) ExportDescription {
	ed := ExportDescription{Export: e}
	for j := range e.Systems {
		sd := SystemDescription{System: &e.Systems[j]}
		if j < len(imgs) {
			sd.Image = imgs[j]
		}
		ed.Systems = append(ed.Systems, sd)
	}
	return ed
}
