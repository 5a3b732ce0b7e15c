// Package timeouts is the one home of how long storepack waits on the
// network (binary caches, registries): it bounds each wait, never the
// work. Connecting (and a TLS handshake) is bounded by Connect, a
// response's headers by Header, and each wait for the next bytes of a
// body by Idle; a body that keeps coming takes as long as it takes. The
// whole of a run is bounded by its context (storepack --timeout).
package timeouts

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// The bounds of each wait. Tests lower them.
var (
	Connect = 10 * time.Second
	Header  = 30 * time.Second
	Idle    = 30 * time.Second
)

var (
	mu     sync.Mutex
	shared *Transport
)

// Shared is the Transport every client of storepack uses (connections
// are reused across them), made once with the bounds of that time.
func Shared() *Transport {
	mu.Lock()
	defer mu.Unlock()
	if shared == nil {
		shared = New()
	}
	return shared
}

// Transport is an http.RoundTripper whose connections, headers and body
// reads are bounded in time.
type Transport struct {
	base *http.Transport
	idle time.Duration
}

// New returns a Transport with the current bounds, proxies from the
// environment.
func New() *Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: Connect, KeepAlive: 30 * time.Second}).DialContext
	t.TLSHandshakeTimeout = Connect
	t.ResponseHeaderTimeout = Header
	return &Transport{base: t, idle: Idle}
}

// Base is the underlying transport, for clients that configure TLS.
func (t *Transport) Base() *http.Transport { return t.base }

// RoundTrip sends req; reading the response's body fails with a
// *BodyError once no byte has come for Idle.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancelCause(req.Context())
	resp, err := t.base.RoundTrip(req.WithContext(ctx))
	if err != nil {
		cancel(nil)
		return nil, err
	}
	resp.Body = newIdleBody(req.Context(), ctx, resp.Body, cancel, t.idle, req.URL.Redacted())
	return resp, nil
}

// errIdle is the cause of a request given up for an idle body.
var errIdle = errors.New("idle")

// BodyError is a failure while reading a response's body that another
// attempt may not meet: a connection lost, or no byte for Idle.
type BodyError struct{ Err error }

func (e *BodyError) Error() string { return e.Err.Error() }
func (e *BodyError) Unwrap() error { return e.Err }

// Retryable reports whether err is (or wraps) a BodyError.
func Retryable(err error) bool {
	var b *BodyError
	return errors.As(err, &b)
}

// idleBody is a body whose reads fail once no byte has come for idle: a
// timer, reset by every read that returns bytes, cancels the request.
type idleBody struct {
	ctx    context.Context // the caller's
	rctx   context.Context // the request's
	rc     io.ReadCloser
	cancel context.CancelCauseFunc
	timer  *time.Timer
	idle   time.Duration
	what   string
}

func newIdleBody(ctx, rctx context.Context, rc io.ReadCloser, cancel context.CancelCauseFunc, idle time.Duration, what string) *idleBody {
	b := &idleBody{ctx: ctx, rctx: rctx, rc: rc, cancel: cancel, idle: idle, what: what}
	b.timer = time.AfterFunc(idle, func() { cancel(errIdle) })
	return b
}

func (b *idleBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if n > 0 {
		b.timer.Reset(b.idle)
	}
	switch {
	case err == nil || err == io.EOF:
	case b.ctx.Err() != nil:
		err = context.Cause(b.ctx) // the caller gave up
	case errors.Is(context.Cause(b.rctx), errIdle):
		err = &BodyError{Err: fmt.Errorf("%s: no data for %s", b.what, b.idle)}
	default:
		err = &BodyError{Err: fmt.Errorf("%s: %w", b.what, err)}
	}
	return n, err
}

func (b *idleBody) Close() error {
	b.timer.Stop()
	err := b.rc.Close()
	b.cancel(nil)
	return err
}

// Reset makes Shared make a new Transport, with the bounds of then: for
// tests that change them.
func Reset() {
	mu.Lock()
	shared = nil
	mu.Unlock()
}
