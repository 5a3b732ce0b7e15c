package storepack

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	digest "github.com/opencontainers/go-digest"

	"github.com/storepack/storepack/export"
	"github.com/storepack/storepack/store"
)

// A release's cost is the layers it has that the one before lacks: what a
// push sends and a pull fetches (storepack diff, plan --since).

// ImageLayers are the layers of one image of a release.
type ImageLayers struct {
	// Name says which image: EXPORT/SYSTEM for plans and locks, the
	// tag or manifest digest for layouts and archives.
	Name   string       `json:"name"`
	Layers []LayerEntry `json:"layers"`
}

// LayerEntry is one layer blob of an image: its digest and length, why
// storepack made it (empty for layers it did not plan) and the store
// items it holds.
type LayerEntry struct {
	Digest digest.Digest `json:"digest"`
	Size   int64         `json:"size"`
	Reason string        `json:"reason,omitempty"`
	Items  []store.Path  `json:"items,omitempty"`
}

// ReadLayers reads the images' layers of a release from path: a plan as
// `storepack plan` prints it, a storepack.lock, an OCI layout folder, an
// oci-archive or a docker archive.
func ReadLayers(path string) ([]ImageLayers, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.IsDir() {
		return layoutLayers(path, path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	head := make([]byte, 512)
	n, _ := io.ReadFull(f, head)
	head = head[:n]
	if t := bytes.TrimSpace(head); len(t) > 0 && t[0] == '{' {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		ls, err := jsonLayers(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return ls, nil
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	return archiveLayers(path, f)
}

// jsonLayers reads a plan's or a lock file's layers.
func jsonLayers(data []byte) ([]ImageLayers, error) {
	var doc struct {
		Version *int `json:"version"`
		Exports []struct {
			Name    string `json:"name"`
			Systems []struct {
				System string       `json:"system"`
				Layers []LayerEntry `json:"layers"` // a lock's
				Image  *struct {
					Base *struct {
						Layers []struct {
							Digest digest.Digest `json:"digest"`
							Size   int64         `json:"size"`
						} `json:"layers"`
					} `json:"base"`
					Layers []struct {
						Digest   digest.Digest `json:"digest"`
						BlobSize int64         `json:"blob_size"`
						Reason   string        `json:"reason"`
						Items    []store.Path  `json:"items"`
					} `json:"layers"`
				} `json:"image"` // a plan's
			} `json:"systems"`
		} `json:"exports"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	var out []ImageLayers
	for _, e := range doc.Exports {
		for _, s := range e.Systems {
			il := ImageLayers{Name: e.Name + "/" + s.System, Layers: s.Layers}
			if img := s.Image; img != nil {
				if img.Base != nil {
					for _, b := range img.Base.Layers {
						il.Layers = append(il.Layers, LayerEntry{Digest: b.Digest, Size: b.Size, Reason: "base"})
					}
				}
				for _, l := range img.Layers {
					il.Layers = append(il.Layers, LayerEntry{Digest: l.Digest, Size: l.BlobSize, Reason: l.Reason, Items: l.Items})
				}
			}
			if len(il.Layers) > 0 {
				out = append(out, il)
			}
		}
	}
	if doc.Version != nil && len(out) == 0 && len(doc.Exports) > 0 {
		return nil, errors.New("the lock file records no layers (lock it again with this storepack)")
	}
	return out, nil
}

// archiveLayers reads a docker archive's images, or an oci-archive's
// (unpacked into a temporary folder).
func archiveLayers(path string, f *os.File) ([]ImageLayers, error) {
	tr := tar.NewReader(f)
	oci := false
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: not a plan, lock file, layout or archive: %w", path, err)
		}
		if h.Name == "oci-layout" || h.Name == "./oci-layout" {
			oci = true
		}
		if h.Name == "manifest.json" || h.Name == "./manifest.json" {
			oci = false
			break
		}
	}
	if !oci {
		img, err := tarball.ImageFromPath(path, nil)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		il, err := imageLayers(path, img)
		if err != nil {
			return nil, err
		}
		return []ImageLayers{il}, nil
	}
	tmp, err := os.MkdirTemp("", "storepack-diff-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	tr = tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		name := filepath.Clean(h.Name)
		if h.Typeflag != tar.TypeReg || strings.HasPrefix(name, "..") || filepath.IsAbs(name) {
			continue
		}
		dst := filepath.Join(tmp, name)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return nil, err
		}
		out, err := os.Create(dst)
		if err != nil {
			return nil, err
		}
		_, err = io.Copy(out, tr)
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	return layoutLayers(path, tmp)
}

// layoutLayers reads the images of the OCI layout in dir (named path in
// errors), through image indexes.
func layoutLayers(path, dir string) ([]ImageLayers, error) {
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var out []ImageLayers
	var walk func(idx v1.ImageIndex) error
	walk = func(idx v1.ImageIndex) error {
		m, err := idx.IndexManifest()
		if err != nil {
			return err
		}
		for _, d := range m.Manifests {
			switch {
			case d.MediaType.IsIndex():
				sub, err := idx.ImageIndex(d.Digest)
				if err != nil {
					return err
				}
				if err := walk(sub); err != nil {
					return err
				}
			case d.MediaType.IsImage():
				if d.ArtifactType != "" || d.Annotations["org.opencontainers.image.ref.name"] == "" && d.Platform == nil {
					continue // a referrer or a signature, not a release's image
				}
				img, err := idx.Image(d.Digest)
				if err != nil {
					return err
				}
				il, err := imageLayers(d.Digest.String(), img)
				if err != nil {
					return err
				}
				if n := d.Annotations["org.opencontainers.image.ref.name"]; n != "" {
					il.Name = n
				}
				if d.Platform != nil {
					il.Name += " " + d.Platform.String()
				}
				out = append(out, il)
			}
		}
		return nil
	}
	if err := walk(idx); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return out, nil
}

// imageLayers lists img's layers, named name. Items are read from the
// layers' tars only when a diff needs them (layerItems).
func imageLayers(name string, img v1.Image) (ImageLayers, error) {
	ls, err := img.Layers()
	if err != nil {
		return ImageLayers{}, fmt.Errorf("%s: %w", name, err)
	}
	il := ImageLayers{Name: name}
	for _, l := range ls {
		d, err := l.Digest()
		if err != nil {
			return il, fmt.Errorf("%s: %w", name, err)
		}
		size, err := l.Size()
		if err != nil {
			return il, fmt.Errorf("%s: %w", name, err)
		}
		items, err := tarItems(l)
		if err != nil {
			return il, fmt.Errorf("%s: layer %s: %w", name, d, err)
		}
		il.Layers = append(il.Layers, LayerEntry{Digest: digest.Digest(d.String()), Size: size, Items: items})
	}
	return il, nil
}

// tarItems are the store items a layer's tar holds: the entries named
// DIR/<32-character hash>-<name>, as /DIR/....
func tarItems(l v1.Layer) ([]store.Path, error) {
	rc, err := l.Uncompressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	seen := map[store.Path]bool{}
	var out []store.Path
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return store.SortPaths(out), nil
		}
		if err != nil {
			return nil, err
		}
		parts := strings.Split(strings.Trim(strings.TrimPrefix(h.Name, "./"), "/"), "/")
		for i, part := range parts {
			if i == 0 || len(part) <= store.HashLen+1 || part[store.HashLen] != '-' {
				continue
			}
			p, err := store.Dir("/" + strings.Join(parts[:i], "/")).Parse("/" + strings.Join(parts[:i+1], "/"))
			if err == nil && !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
			break
		}
	}
}

// DiffLayers is, for each image of next, the layers no image of prev
// has (by digest), in next's order; images with none are left out.
func DiffLayers(prev, next []ImageLayers) []ImageLayers {
	had := map[digest.Digest]bool{}
	for _, il := range prev {
		for _, l := range il.Layers {
			had[l.Digest] = true
		}
	}
	var out []ImageLayers
	for _, il := range next {
		d := ImageLayers{Name: il.Name}
		for _, l := range il.Layers {
			if !had[l.Digest] {
				d.Layers = append(d.Layers, l)
			}
		}
		if len(d.Layers) > 0 {
			out = append(out, d)
		}
	}
	return out
}

// WriteDiff prints a DiffLayers result for people: each image's new
// layers with their bytes, reasons and items, and the totals beside the
// new release's (next's) bytes.
func WriteDiff(w io.Writer, diff, next []ImageLayers) {
	all := map[digest.Digest]int64{}
	for _, il := range next {
		for _, l := range il.Layers {
			all[l.Digest] = l.Size
		}
	}
	var total int64
	for _, s := range all {
		total += s
	}
	counted := map[digest.Digest]bool{}
	var added int64
	n := 0
	for _, il := range diff {
		fmt.Fprintf(w, "%s:\n", il.Name)
		for _, l := range il.Layers {
			fmt.Fprintf(w, "  %s  %9s  %-9s %s\n", l.Digest, humanBytes(l.Size), l.Reason, itemNames(l.Items))
			if !counted[l.Digest] {
				counted[l.Digest] = true
				added += l.Size
				n++
			}
		}
	}
	fmt.Fprintf(w, "%d new layers, %s (%d bytes) of %s (%d bytes)\n", n, humanBytes(added), added, humanBytes(total), total)
}

// itemNames names store items, or says there are none.
func itemNames(ps []store.Path) string {
	if len(ps) == 0 {
		return "(no store items)"
	}
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = p.Name()
	}
	return strings.Join(names, " ")
}

// Since is what the plan of o adds to the release lockFile records: its
// layers that the lock's lack (storepack plan --since), and the plan's
// layers.
func Since(o Options, lockFile string) (diff, next []ImageLayers, err error) {
	prev, err := ReadLayers(lockFile)
	if err != nil {
		return nil, nil, err
	}
	d, err := Plan(o)
	if err != nil {
		return nil, nil, err
	}
	next = descriptionLayers(d)
	return DiffLayers(prev, next), next, nil
}

// descriptionLayers are the layers of a described plan's images.
func descriptionLayers(d *export.Description) []ImageLayers {
	var out []ImageLayers
	for _, e := range d.Exports {
		for _, s := range e.Systems {
			if s.Image == nil {
				continue
			}
			il := ImageLayers{Name: e.Name + "/" + s.Name}
			for _, b := range s.Image.BaseBlobs {
				il.Layers = append(il.Layers, LayerEntry{Digest: b.Digest, Size: b.BlobSize, Reason: "base"})
			}
			for i, b := range s.Image.Blobs {
				l := &s.Image.Plan.Layers[i]
				il.Layers = append(il.Layers, LayerEntry{Digest: b.Digest, Size: b.BlobSize, Reason: l.Reason, Items: l.Items})
			}
			out = append(out, il)
		}
	}
	return out
}
