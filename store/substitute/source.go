package substitute

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/storepack/storepack/internal/bounded"
	"github.com/storepack/storepack/internal/printable"
	"github.com/storepack/storepack/internal/timeouts"
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
// Messages name it by its URL with any password redacted
// (printable.URL).
func NewSource(u string) (Source, error) {
	switch {
	case strings.HasPrefix(u, "file://"):
		dir := strings.TrimPrefix(u, "file://")
		if !filepath.IsAbs(dir) {
			return nil, fmt.Errorf("cache %s: file:// takes an absolute folder", printable.String(u))
		}
		return fileSource(dir), nil
	case strings.HasPrefix(u, "http://"), strings.HasPrefix(u, "https://"):
		if _, err := url.Parse(u); err != nil {
			return nil, fmt.Errorf("cache %s: not a URL", printable.URL(u))
		}
		base := strings.TrimSuffix(u, "/")
		return &httpSource{base: base, name: printable.URL(base), client: &http.Client{Transport: timeouts.Shared()}}, nil
	case binarycache.IsS3(u):
		return binarycache.NewS3(u)
	}
	return nil, fmt.Errorf("cache %q: want file://DIR, http://..., https://... or s3://...", printable.URL(u))
}

// fileSource is a cache folder.
type fileSource string

func (d fileSource) String() string { return printable.String("file://" + string(d)) }

// Open opens a regular file of the folder: a FIFO or a device (a file
// linked to /dev/zero) is refused, not read forever.
func (d fileSource) Open(_ context.Context, rel string) (io.ReadCloser, error) {
	return bounded.Open(filepath.Join(string(d), filepath.FromSlash(rel)))
}

// The bounds of reaching an http cache: each wait is bounded (package
// timeouts: connecting, headers, no byte for a while), not a download; a
// failed request or body (no answer, a 5xx, a connection lost or idle) is
// tried again after a growing pause, Attempts times in all.
var (
	Attempts = 3
	Backoff  = 250 * time.Millisecond
)

// httpSource is a cache served over http(s).
type httpSource struct {
	base   string
	name   string // base, its password redacted
	client *http.Client
}

func (h *httpSource) String() string { return h.name }

// Open returns the body of rel, which fails (with a timeouts.BodyError)
// once no byte has come for timeouts.Idle.
func (h *httpSource) Open(ctx context.Context, rel string) (io.ReadCloser, error) {
	var last error
	pause := Backoff
	for attempt := 1; attempt <= Attempts; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.base+"/"+rel, nil)
		if err != nil {
			return nil, fmt.Errorf("%s/%s: %w", h.name, printable.String(rel), err)
		}
		resp, err := h.client.Do(req)
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return nil, context.Cause(ctx)
			}
			last = errors.New(printable.String(err.Error())) // net/http strips the password
		case resp.StatusCode == http.StatusOK:
			return resp.Body, nil
		case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusForbidden:
			resp.Body.Close()
			return nil, fmt.Errorf("%s/%s: %s: %w", h.name, printable.String(rel), printable.String(resp.Status), fs.ErrNotExist)
		default:
			resp.Body.Close()
			last = fmt.Errorf("%s/%s: %s", h.name, printable.String(rel), printable.String(resp.Status))
			if resp.StatusCode < 500 {
				return nil, last
			}
		}
		if attempt < Attempts {
			if err := sleep(ctx, pause); err != nil {
				return nil, err
			}
			pause *= 4
		}
	}
	return nil, fmt.Errorf("%s unreachable after %d attempts: %w", h.name, Attempts, last)
}

// sleep waits d, or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// retryable reports whether err is worth another attempt: a body lost
// or idle on the way.
func retryable(err error) bool { return timeouts.Retryable(err) }

// notFound reports whether err says the cache has no such file.
func notFound(err error) bool { return errors.Is(err, fs.ErrNotExist) }
