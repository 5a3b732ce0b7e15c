package base

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/storepack/storepack/internal/timeouts"
)

// TestRegistryWaitsBounded: a registry that accepts requests and never
// answers, or stops sending a body, is given up once a wait exceeds its
// bound (package timeouts), without any context, naming the base.
func TestRegistryWaitsBounded(t *testing.T) {
	saved := []time.Duration{timeouts.Header, timeouts.Idle}
	timeouts.Header, timeouts.Idle = 200*time.Millisecond, 200*time.Millisecond
	timeouts.Reset()
	defer func() { timeouts.Header, timeouts.Idle = saved[0], saved[1]; timeouts.Reset() }()
	for _, tt := range []struct {
		name string
		hang func(w http.ResponseWriter, r *http.Request)
		want string
	}{
		{"no headers", func(w http.ResponseWriter, r *http.Request) {
			<-r.Context().Done()
		}, "timeout awaiting response headers"},
		{"stalled body", func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/v2/" {
				return
			}
			w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
			w.Header().Set("Content-Length", "1000")
			w.Write([]byte(`{"schemaVersion":2,`))
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		}, "no data for 200ms"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(tt.hang))
			defer srv.Close()
			ref := strings.TrimPrefix(srv.URL, "http://") + "/base@sha256:" + strings.Repeat("a", 64)
			_, err := Resolve(ref, amd64, Options{Insecure: true})
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), ref) {
				t.Errorf("Resolve: %v, want %q naming the base", err, tt.want)
			}
		})
	}
}
