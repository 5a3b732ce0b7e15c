package substitute

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/storepack/storepack/store/binarycache"
)

// Source is one binary cache: where nix-cache-info, the narinfos and the
// NAR files are read from. file:// and http(s):// caches are here;
// s3:// caches are binarycache.S3 (a GetObject per file, credentials from
// the AWS SDK's default chain).
type Source interface {
	// String is the cache's URL, for messages.
	String() string
	// Open returns the file at rel ("nix-cache-info", "<hash>.narinfo",
	// "nar/<file>"); an error wrapping fs.ErrNotExist when the cache has
	// none.
	Open(ctx context.Context, rel string) (io.ReadCloser, error)
}

// NewSource returns the cache at u: file://DIR, http(s)://HOST/PATH or
// s3://BUCKET[/PREFIX]?region=R&endpoint=URL&scheme=http|https&profile=P.
func NewSource(u string) (Source, error) {
	switch {
	case strings.HasPrefix(u, "file://"):
		dir := strings.TrimPrefix(u, "file://")
		if !filepath.IsAbs(dir) {
			return nil, fmt.Errorf("cache %s: file:// takes an absolute folder", u)
		}
		return fileSource(dir), nil
	case strings.HasPrefix(u, "http://"), strings.HasPrefix(u, "https://"):
		if _, err := url.Parse(u); err != nil {
			return nil, fmt.Errorf("cache %s: %w", u, err)
		}
		return &httpSource{base: strings.TrimSuffix(u, "/"), client: &http.Client{Timeout: HTTPTimeout}}, nil
	case binarycache.IsS3(u):
		return binarycache.NewS3(u)
	}
	return nil, fmt.Errorf("cache %q: want file://DIR, http://..., https://... or s3://...", u)
}

// fileSource is a cache folder.
type fileSource string

func (d fileSource) String() string { return "file://" + string(d) }

func (d fileSource) Open(_ context.Context, rel string) (io.ReadCloser, error) {
	return os.Open(filepath.Join(string(d), filepath.FromSlash(rel)))
}

// The bounds of reaching an http cache: each request times out, and a
// failed one (no answer, or a 5xx) is tried again after a growing pause,
// Attempts times in all.
var (
	HTTPTimeout = 20 * time.Second
	Attempts    = 3
	Backoff     = 250 * time.Millisecond
)

// httpSource is a cache served over http(s).
type httpSource struct {
	base   string
	client *http.Client
}

func (h *httpSource) String() string { return h.base }

func (h *httpSource) Open(ctx context.Context, rel string) (io.ReadCloser, error) {
	var last error
	pause := Backoff
	for attempt := 1; attempt <= Attempts; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.base+"/"+rel, nil)
		if err != nil {
			return nil, err
		}
		resp, err := h.client.Do(req)
		switch {
		case err != nil:
			last = err
		case resp.StatusCode == http.StatusOK:
			return resp.Body, nil
		case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusForbidden:
			resp.Body.Close()
			return nil, fmt.Errorf("%s/%s: %s: %w", h.base, rel, resp.Status, fs.ErrNotExist)
		default:
			resp.Body.Close()
			last = fmt.Errorf("%s/%s: %s", h.base, rel, resp.Status)
			if resp.StatusCode < 500 {
				return nil, last
			}
		}
		if attempt < Attempts {
			select {
			case <-time.After(pause):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			pause *= 4
		}
	}
	return nil, fmt.Errorf("%s unreachable after %d attempts: %w", h.base, Attempts, last)
}

// notFound reports whether err says the cache has no such file.
func notFound(err error) bool { return errors.Is(err, fs.ErrNotExist) }
