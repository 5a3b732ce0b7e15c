package plan

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/internal/platform"
	"github.com/storepack/storepack/store"
)

// Image is the plan of one image (one system of a docker or oci export):
// its platform, tag and creation time, its layers with what each holds,
// and the settings of its config. Package image encodes it.
type Image struct {
	// Platform is the system's architecture, os and variant.
	Platform Platform `json:"platform"`
	// Tag is the image's full reference, name:tag.
	Tag string `json:"tag"`
	// Created is the image's creation time, UTC: the config's created
	// time, and, rounded down to the second (MTime), the modification time
	// of every tar entry.
	Created time.Time `json:"created"`
	// Layers are the image's layers, bottom first.
	Layers []Layer `json:"layers"`
	// Compression is the compression of the layer blobs ("none", "gzip"
	// or "zstd"); empty for formats whose layers are always uncompressed
	// (docker).
	Compression format.Compression `json:"compression,omitempty"`
	// Config holds the settings of the image's config.
	Config ImageConfig `json:"config"`
	// Base is the image this one is built on, for its platform: its layers
	// come first, its config gives the defaults (Config has them merged).
	Base *Base `json:"base,omitempty"`
	// Annotations go on the image's manifest (and the index's): the
	// standard OCI ones storepack knows (created; version, from a tag
	// other than latest) and the spec's, which override them.
	Annotations map[string]string `json:"annotations,omitempty"`
}

// MTime is the modification time of every tar entry of the image, in Unix
// seconds: Created rounded down to the second.
func (img *Image) MTime() int64 { return img.Created.Unix() }

// ImageConfig holds how an image runs, as the spec sets it.
type ImageConfig struct {
	Entrypoint []string          `json:"entrypoint,omitempty"`
	Cmd        []string          `json:"cmd,omitempty"`
	Env        map[string]string `json:"env,omitempty"`
	WorkingDir string            `json:"working_dir,omitempty"`
	User       string            `json:"user,omitempty"`
	Labels     map[string]string `json:"labels,omitempty"`
	// ExposedPorts are "PORT/PROTOCOL".
	ExposedPorts []string `json:"exposed_ports,omitempty"`
	Volumes      []string `json:"volumes,omitempty"`
}

// Layer is one layer of an image: a tree of store items (each under its
// store path) and entries (folders and symlinks the image needs).
type Layer struct {
	// ID names the layer deterministically before its bytes are known: the
	// hex sha256 of its description (entries, items with their NAR
	// hashes), so layers with the same contents get the same ID. Docker
	// archives use it as the layer's folder name.
	ID string `json:"id"`
	Tree
	// Reason says why the layer holds what it holds: "root" (the
	// export's top items), "popular" (one item, by popularity), "group N"
	// (items grouped by name), "layer NAME" (a layer block), "all" (every
	// item in one layer) or "extra" (the folders and symlinks).
	// docs/layers.md explains them.
	Reason string `json:"reason,omitempty"`
	// CreatedBy and Comment describe the layer in the config's history.
	CreatedBy string `json:"created_by"`
	Comment   string `json:"comment,omitempty"`
}

// Platform is an image platform: architecture, OS and variant.
type Platform = platform.Platform

// IndexTag is the tag of the image index of a multi-system export: the
// systems' tags without their "-<architecture><variant>" suffix when they
// agree (the spec's tag), else, for default tags made from differing
// closures, "<export name>:" and the first 10 hex digits of the sha256 of
// the systems' closure digests, one a line in system order. An export of
// one system has its image's tag.
func (e *Export) IndexTag() (string, error) {
	if len(e.Systems) == 0 || e.Systems[0].Image == nil {
		return "", fmt.Errorf("export %q has no image", e.Name)
	}
	if len(e.Systems) == 1 {
		return e.Systems[0].Image.Tag, nil
	}
	base := ""
	h := sha256.New()
	for i := range e.Systems {
		img := e.Systems[i].Image
		if img == nil {
			return "", fmt.Errorf("export %q, system %s: no image plan", e.Name, e.Systems[i].Name)
		}
		b, ok := strings.CutSuffix(img.Tag, "-"+img.Platform.TagSuffix())
		if !ok {
			return "", fmt.Errorf("export %q, system %s: tag %s lacks its platform suffix", e.Name, e.Systems[i].Name, img.Tag)
		}
		if i == 0 {
			base = b
		} else if b != base {
			base = ""
		}
		fmt.Fprintf(h, "%s\n", e.Systems[i].ClosureDigest)
	}
	if base != "" {
		return base, nil
	}
	return e.Name + ":" + hex.EncodeToString(h.Sum(nil))[:10], nil
}

// LayerInputs describes, a line each, what the tar of layer l depends on
// besides its mtime: its entries (with a file's contents), its items with
// their NAR hashes, and, for a layer with the store database, every item
// of the closure (items, by path) with what the database records. Layer IDs
// and layer cache keys hash them.
func LayerInputs(l *Layer, items map[store.Path]*Item) []string {
	var out []string
	db := false
	for _, e := range l.Entries {
		out = append(out, fmt.Sprintf("entry %s %04o %q %q", e.Type, uint32(e.Mode), e.Path, e.Target))
		if e.UID != 0 || e.GID != 0 {
			out = append(out, fmt.Sprintf("owner %d:%d", e.UID, e.GID))
		}
		if e.Type == EntryFile {
			out = append(out, fmt.Sprintf("content %q", e.Content))
		}
		db = db || e.Type == EntryDatabase
	}
	for _, p := range l.Items {
		out = append(out, fmt.Sprintf("item %q %s", string(p), items[p].NarHash))
	}
	if db {
		paths := make([]store.Path, 0, len(items))
		for p := range items {
			paths = append(paths, p)
		}
		for _, p := range store.SortPaths(paths) {
			it := items[p]
			out = append(out, fmt.Sprintf("registered %q %s %d %q %q", string(it.Path), it.NarHash, it.NarSize, it.Deriver, it.References))
		}
	}
	return out
}

// Base is a base image for one platform, as a plan records it.
type Base struct {
	// Ref is the base as the spec gives it.
	Ref string `json:"ref"`
	// Digest is the digest of the platform's image manifest.
	Digest digest.Digest `json:"digest"`
	// Layers are its layers, bottom first.
	Layers []BaseLayer `json:"layers"`
	// History is its config's history.
	History []ocispec.History `json:"history,omitempty"`
	// Config holds the settings an image built on it inherits.
	Config BaseConfig `json:"config"`
}

// BaseLayer is one layer of a base image: its blob, unchanged.
type BaseLayer struct {
	Digest    digest.Digest `json:"digest"`
	Size      int64         `json:"size"`
	MediaType string        `json:"media_type"`
	DiffID    digest.Digest `json:"diff_id"`
}

// BaseConfig is what an image inherits from its base's config.
type BaseConfig struct {
	Env        []string `json:"env,omitempty"`
	Entrypoint []string `json:"entrypoint,omitempty"`
	Cmd        []string `json:"cmd,omitempty"`
	User       string   `json:"user,omitempty"`
	WorkingDir string   `json:"working_dir,omitempty"`
}
