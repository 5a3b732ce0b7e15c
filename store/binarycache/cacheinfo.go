package binarycache

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/storepack/storepack/internal/bounded"
	"github.com/storepack/storepack/store"
)

// CacheInfoFile is the name of the file that describes a cache.
const CacheInfoFile = "nix-cache-info"

// DefaultPriority is the Priority Write gives a new cache: that of
// cache.nixos.org, so that Nix prefers neither.
const DefaultPriority = 40

// CacheInfo is the content of a cache's nix-cache-info file.
type CacheInfo struct {
	// StoreDir is the store folder of the cache's paths.
	StoreDir store.Dir
	// WantMassQuery tells Nix it may ask the cache about many paths at
	// once; -1 when the file does not say.
	WantMassQuery int
	// Priority orders substituters (lower first); -1 when the file does
	// not say.
	Priority int
}

// MarshalText writes c as "Key: value" lines, leaving out the fields that
// are -1.
func (c *CacheInfo) MarshalText() ([]byte, error) {
	if _, err := store.ParseDir(string(c.StoreDir)); err != nil {
		return nil, fmt.Errorf("StoreDir: %w", err)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "StoreDir: %s\n", c.StoreDir)
	if c.WantMassQuery >= 0 {
		fmt.Fprintf(&b, "WantMassQuery: %d\n", c.WantMassQuery)
	}
	if c.Priority >= 0 {
		fmt.Fprintf(&b, "Priority: %d\n", c.Priority)
	}
	return b.Bytes(), nil
}

// ParseCacheInfo reads a nix-cache-info file strictly: "Key: value"
// lines ending in newlines; StoreDir required, an absolute clean path;
// WantMassQuery 0 or 1 and Priority a number, both optional (-1 when
// absent); no other field, none repeated.
func ParseCacheInfo(data []byte) (*CacheInfo, error) {
	if len(data) > bounded.CacheInfo {
		return nil, fmt.Errorf("nix-cache-info of %d bytes, more than %d: %w", len(data), bounded.CacheInfo, bounded.ErrTooLarge)
	}
	if len(data) == 0 || data[len(data)-1] != '\n' {
		return nil, errors.New("empty, or does not end with a newline")
	}
	c := &CacheInfo{WantMassQuery: -1, Priority: -1}
	seen := map[string]int{}
	for i, line := range strings.Split(string(data[:len(data)-1]), "\n") {
		ln := i + 1
		k, v, ok := strings.Cut(line, ": ")
		if !ok {
			return nil, fmt.Errorf("line %d: %q is not \"Key: value\"", ln, line)
		}
		if prev, dup := seen[k]; dup {
			return nil, fmt.Errorf("line %d: %s repeats the field of line %d", ln, k, prev)
		}
		seen[k] = ln
		switch k {
		case "StoreDir":
			d, err := store.ParseDir(v)
			if err != nil {
				return nil, fmt.Errorf("line %d: StoreDir: %w", ln, err)
			}
			c.StoreDir = d
		case "WantMassQuery":
			if v != "0" && v != "1" {
				return nil, fmt.Errorf("line %d: WantMassQuery %q is not 0 or 1", ln, v)
			}
			c.WantMassQuery = int(v[0] - '0')
		case "Priority":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || strconv.Itoa(n) != v {
				return nil, fmt.Errorf("line %d: Priority %q is not a number", ln, v)
			}
			c.Priority = n
		default:
			return nil, fmt.Errorf("line %d: unknown field %q", ln, k)
		}
	}
	if c.StoreDir == "" {
		return nil, errors.New("no StoreDir field")
	}
	return c, nil
}
