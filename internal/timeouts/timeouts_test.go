package timeouts

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestIdleBody: a body that keeps coming, however slowly, is read whole;
// one that stops for Idle fails with a retryable error naming the URL
// (its password redacted); one whose caller gives up fails with the
// caller's cause, not retryable.
func TestIdleBody(t *testing.T) {
	saved := Idle
	Idle = 150 * time.Millisecond
	defer func() { Idle = saved }()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i := range 6 {
			if r.URL.Path == "/stall" && i == 2 {
				<-r.Context().Done()
				return
			}
			w.Write([]byte("x"))
			w.(http.Flusher).Flush()
			time.Sleep(50 * time.Millisecond)
		}
	}))
	defer srv.Close()
	client := &http.Client{Transport: New()}
	get := func(ctx context.Context, path string) (string, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, strings.Replace(srv.URL, "http://", "http://u:secret@", 1)+path, nil)
		resp, err := client.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	if b, err := get(context.Background(), "/steady"); err != nil || b != "xxxxxx" {
		t.Errorf("steady: %q, %v", b, err)
	}
	_, err := get(context.Background(), "/stall")
	if !Retryable(err) || !strings.Contains(err.Error(), "no data for 150ms") || strings.Contains(err.Error(), "secret") {
		t.Errorf("stalled: %v, want a retryable idle error without the password", err)
	}
	gone := errors.New("the run is over")
	ctx, cancel := context.WithCancelCause(context.Background())
	time.AfterFunc(60*time.Millisecond, func() { cancel(gone) })
	if _, err := get(ctx, "/steady"); !errors.Is(err, gone) || Retryable(err) {
		t.Errorf("cancelled: %v, want the caller's cause", err)
	}
}
