package export

import (
	"encoding/json"
	"fmt"

	digest "github.com/opencontainers/go-digest"

	"github.com/storepack/storepack/export/image"
	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/internal/layercache"
	"github.com/storepack/storepack/plan"
)

// Description is a plan with what writing it computes about its images:
// each image's layer digests, config and manifests (image.Image), and the
// image index of an OCI export of several systems. It marshals to the JSON
// that `storepack plan` prints: the plan's own fields, each system's image
// in the form image.Image.MarshalJSON gives.
type Description struct {
	*plan.Plan
	Exports []ExportDescription `json:"exports"`
}

// ExportDescription is one export of a Description.
type ExportDescription struct {
	*plan.Export
	Systems []SystemDescription `json:"systems"`
	// Index is the image index of an OCI export of several systems, the
	// bytes the layout holds as blobs/sha256/<hex of IndexDigest> and its
	// index.json names; IndexSize is their length. All three are empty
	// for other exports.
	Index       json.RawMessage `json:"index,omitempty"`
	IndexDigest digest.Digest   `json:"index_digest,omitempty"`
	IndexSize   int64           `json:"index_size,omitempty"`
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
// them. Each image is the one its export's writer writes, encoded by the
// same code: for a docker export, the archive's image (its base's layers
// as uncompressed tars, which means decompressing a compressed base's
// layers, through the cache, to learn their lengths); for an OCI export,
// the layout's, with the image index of several systems. Nothing is
// written but records and base layers in the cache.
func Describe(plan *plan.Plan, o Options) (*Description, error) {
	d := &Description{Plan: plan}
	for i := range plan.Exports {
		e := &plan.Exports[i]
		var (
			imgs  *image.Set
			index []byte
		)
		if e.Format.Kind() == format.Image {
			var err error
			if imgs, index, err = describeImages(e, o.Cache); err != nil {
				return nil, fmt.Errorf("export %q: %w", e.Name, err)
			}
		}
		ed := describeExport(e, imgs)
		if index != nil {
			ed.Index, ed.IndexDigest, ed.IndexSize = index, digest.FromBytes(index), int64(len(index))
		}
		d.Exports = append(d.Exports, ed)
	}
	return d, nil
}

// describeImages returns the images of e, an image export, as its writer
// writes them, from their layers' blobs computed without writing
// (image.DigestBlobs); and the image index the output holds, if any (an
// OCI export of several systems).
func describeImages(e *plan.Export, c *layercache.Cache) (imgs *image.Set, index []byte, err error) {
	blobs, err := image.DigestBlobs(e, c)
	if err != nil {
		return nil, nil, err
	}
	d, ok := e.Format.Entry().(imageDescriber)
	if !ok {
		return nil, nil, fmt.Errorf("no image writer for the format %q", e.Format)
	}
	return d.describe(e, blobs, c)
}

// An imageDescriber is an image format that says what its writer writes
// of each image, from the layers' blobs, and the image index its output
// holds (nil for none).
type imageDescriber interface {
	describe(e *plan.Export, blobs map[string]image.Blob, c *layercache.Cache) (*image.Set, []byte, error)
}

// describeExport is e with imgs, its systems' images (nil for other
// formats).
func describeExport(e *plan.Export, imgs *image.Set) ExportDescription {
	ed := ExportDescription{Export: e}
	for j := range e.Systems {
		sd := SystemDescription{System: &e.Systems[j]}
		if imgs != nil && j < len(imgs.Images) {
			sd.Image = imgs.Images[j]
		}
		ed.Systems = append(ed.Systems, sd)
	}
	return ed
}

// The image formats describe their images.
var (
	_ imageDescriber = dockerWriter{}
	_ imageDescriber = ociWriter{}
)
