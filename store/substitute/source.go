package substitute

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/storepack/storepack/internal/bounded"
	"github.com/storepack/storepack/internal/printable"
)

// Source is one binary cache: where nix-cache-info, the narinfos and the
// NAR files are read from. file:// and http(s):// caches are here; another
// kind (s3://, say) is one more Source (docs/binary-cache.md says how).
type Source interface {
	// String is the cache's URL, for messages.
	String() string
	// Open returns the file at rel ("nix-cache-info", "<hash>.narinfo",
	// "nar/<file>"); an error wrapping fs.ErrNotExist when the cache has
	// none.
	Open(ctx context.Context, rel string) (io.ReadCloser, error)
}

// NewSource returns the cache at u: file://DIR or http(s)://HOST/PATH.
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
		return &httpSource{base: base, name: printable.URL(base), client: &http.Client{Transport: Transport()}}, nil
	case strings.HasPrefix(u, "s3://"):
		return nil, fmt.Errorf("cache %s: s3:// caches are not supported (docs/binary-cache.md says how one would slot in)", printable.URL(u))
	}
	return nil, fmt.Errorf("cache %q: want file://DIR, http://... or https://...", printable.URL(u))
}

// fileSource is a cache folder.
type fileSource string

func (d fileSource) String() string { return printable.String("file://" + string(d)) }

// Open opens a regular file of the folder: a FIFO or a device (a file
// linked to /dev/zero) is refused, not read forever.
func (d fileSource) Open(_ context.Context, rel string) (io.ReadCloser, error) {
	return bounded.Open(filepath.Join(string(d), filepath.FromSlash(rel)))
}

// The bounds of reaching an http cache, which bound the waits, not the
// work: connecting (ConnectTimeout, and as long again for a TLS
// handshake), the response's headers (HeaderTimeout), and every wait for
// the next bytes of a body (IdleTimeout); a download that keeps coming
// takes as long as it takes (the run's context, storepack --timeout, bounds
// the whole). A failed request or body (no answer, a 5xx, a connection
// lost or idle) is tried again after a growing pause, Attempts times in
// all.
var (
	ConnectTimeout = 10 * time.Second
	HeaderTimeout  = 30 * time.Second
	IdleTimeout    = 30 * time.Second
	Attempts       = 3
	Backoff        = 250 * time.Millisecond
)

// Transport is the http transport of caches and registries: a
// connection, TLS handshake and response headers bounded in time
// (ConnectTimeout, HeaderTimeout), proxies from the environment.
func Transport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: ConnectTimeout, KeepAlive: 30 * time.Second}).DialContext
	t.TLSHandshakeTimeout = ConnectTimeout
	t.ResponseHeaderTimeout = HeaderTimeout
	return t
}

// httpSource is a cache served over http(s).
type httpSource struct {
	base   string
	name   string // base, its password redacted
	client *http.Client
}

func (h *httpSource) String() string { return h.name }

// Open returns the body of rel, which fails (with an error that is
// Retryable) once no byte has come for IdleTimeout.
func (h *httpSource) Open(ctx context.Context, rel string) (io.ReadCloser, error) {
	var last error
	pause := Backoff
	for attempt := 1; attempt <= Attempts; attempt++ {
		rctx, cancel := context.WithCancelCause(ctx)
		req, err := http.NewRequestWithContext(rctx, http.MethodGet, h.base+"/"+rel, nil)
		if err != nil {
			cancel(nil)
			return nil, fmt.Errorf("%s/%s: %w", h.name, printable.String(rel), err)
		}
		resp, err := h.client.Do(req)
		switch {
		case err != nil:
			cancel(nil)
			if ctx.Err() != nil {
				return nil, context.Cause(ctx)
			}
			last = errors.New(printable.String(err.Error())) // net/http strips the password
		case resp.StatusCode == http.StatusOK:
			return newIdleBody(ctx, rctx, resp.Body, cancel, h.name+"/"+printable.String(rel)), nil
		case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusForbidden:
			resp.Body.Close()
			cancel(nil)
			return nil, fmt.Errorf("%s/%s: %s: %w", h.name, printable.String(rel), printable.String(resp.Status), fs.ErrNotExist)
		default:
			resp.Body.Close()
			cancel(nil)
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

// errIdle is the cause of a body given up for being idle.
var errIdle = errors.New("idle")

// idleBody is a response body whose reads fail once no byte has come
// for IdleTimeout: a timer, reset by every read that returns bytes,
// cancels the request.
type idleBody struct {
	ctx    context.Context // the caller's
	rctx   context.Context // the request's
	rc     io.ReadCloser
	cancel context.CancelCauseFunc
	timer  *time.Timer
	what   string
}

func newIdleBody(ctx, rctx context.Context, rc io.ReadCloser, cancel context.CancelCauseFunc, what string) *idleBody {
	b := &idleBody{ctx: ctx, rctx: rctx, rc: rc, cancel: cancel, what: what}
	b.timer = time.AfterFunc(IdleTimeout, func() { cancel(errIdle) })
	return b
}

func (b *idleBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if n > 0 {
		b.timer.Reset(IdleTimeout)
	}
	switch {
	case err == nil || err == io.EOF:
	case b.ctx.Err() != nil:
		err = context.Cause(b.ctx) // the run is over
	case errors.Is(context.Cause(b.rctx), errIdle):
		err = &RetryableError{Err: fmt.Errorf("%s: no data for %s", b.what, IdleTimeout)}
	default:
		err = &RetryableError{Err: fmt.Errorf("%s: %s", b.what, printable.String(err.Error()))}
	}
	return n, err
}

func (b *idleBody) Close() error {
	b.timer.Stop()
	err := b.rc.Close()
	b.cancel(nil)
	return err
}

// RetryableError is a failure to read a body that another attempt may
// not meet: a connection lost or idle.
type RetryableError struct{ Err error }

func (e *RetryableError) Error() string { return e.Err.Error() }
func (e *RetryableError) Unwrap() error { return e.Err }

// retryable reports whether err is worth another attempt.
func retryable(err error) bool {
	var r *RetryableError
	return errors.As(err, &r)
}

// notFound reports whether err says the cache has no such file.
func notFound(err error) bool { return errors.Is(err, fs.ErrNotExist) }
