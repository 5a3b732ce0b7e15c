package binarycache

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"io/fs"
	"log"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/storepack/storepack/internal/s3test"
	"github.com/storepack/storepack/store"
	"github.com/storepack/storepack/store/nar"
)

// bigItem adds to items a store item of size random (incompressible)
// bytes, referring to the first item, so that its NAR goes up in parts.
func bigItem(t *testing.T, items []Item, size int) []Item {
	t.Helper()
	p := testPath(testStore, "big", "big-1.0")
	dir := filepath.Join(t.TempDir(), p.Base())
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	data := make([]byte, size)
	rand.Read(data)
	if err := os.WriteFile(filepath.Join(dir, "blob"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ref"), []byte(items[0].Path), 0o644); err != nil {
		t.Fatal(err)
	}
	it := Item{Path: p, FSPath: dir, References: []store.Path{items[0].Path}}
	h, n, err := nar.Hash(dir)
	if err != nil {
		t.Fatal(err)
	}
	it.NarHash, it.NarSize = h, n
	return append(items, it)
}

// newS3 opens the cache at u with small parts (5 MiB, S3's least), so
// that a NAR of a few MiB goes up in parts.
func newS3(t *testing.T, u string, copyPart int64) *S3 {
	t.Helper()
	c, err := NewS3(u)
	if err != nil {
		t.Fatal(err)
	}
	c.PartSize = 5 << 20
	if copyPart > 0 {
		c.CopyPartSize = copyPart
	}
	return c
}

// bucketFiles is the objects of bucket under prefix, by their names in
// the cache.
func bucketFiles(t *testing.T, srv *s3test.Server, bucket, prefix string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for k, v := range srv.Objects(bucket) {
		rel, ok := strings.CutPrefix(k, prefix+"/")
		if prefix == "" {
			rel, ok = k, true
		}
		if !ok {
			t.Errorf("object %s is outside the cache's prefix %s", k, prefix)
			continue
		}
		out[rel] = v
	}
	return out
}

// writeOps are the operations that write to a bucket, as versitygw's
// access log names them (it names no HTTP method).
var writeOps = []string{"s3_PutObject", "s3_CreateMultipartUpload", "s3_UploadPart",
	"s3_CompleteMultipartUpload", "s3_CopyObject", "s3_DeleteObject"}

// writes counts the access log's lines of writes that succeeded (a
// conditional put refused with 412 writes nothing) whose line holds key
// ("" for any).
func writes(lines []string, key string) int {
	n := 0
	for _, l := range lines {
		op, status := accessOp(l)
		if slices.Contains(writeOps, op) && strings.HasPrefix(status, "2") && strings.Contains(l, key) {
			n++
		}
	}
	return n
}

// accessOp is the operation and HTTP status of an access log line:
// "... [time] ip requester id s3_Op key uri status ...".
func accessOp(line string) (op, status string) {
	f := strings.Fields(line)
	for i, w := range f {
		if strings.HasPrefix(w, "s3_") && i+3 < len(f) {
			return w, f[i+3]
		}
	}
	return "", ""
}

// count counts the access log's lines holding every one of words.
func count(lines []string, words ...string) int {
	n := 0
	for _, l := range lines {
		all := true
		for _, w := range words {
			all = all && strings.Contains(l, w)
		}
		if all {
			n++
		}
	}
	return n
}

// TestS3SameAsFolder writes the same closure to a folder and to a bucket
// (with and without a prefix, every compression, a NAR large enough for a
// multipart upload copied in one request or in parts): the bucket holds
// the folder's files, object by object, and verifies; writing again
// uploads no NAR.
func TestS3SameAsFolder(t *testing.T) {
	srv := s3test.Start(t)
	small := testItems(t)
	big := bigItem(t, small, 12<<20)
	key := testKey(t, "s3-test-1")
	cases := []struct {
		name, prefix, compression string
		items                     []Item // xz is too slow for the big item
		copyPart                  int64
	}{
		{"top", "", CompressionZstd, big, 0},
		{"prefix", "team/cache", CompressionXZ, small, 0},
		{"none, copied in parts", "p", CompressionNone, big, 5 << 20},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bucket, items := "same"+string(rune('a'+i)), tc.items
			srv.CreateBucket(bucket)
			opts := Options{StoreDir: testStore, Compression: tc.compression, Key: key}
			dir := t.TempDir()
			if _, err := Write(dir, items, opts); err != nil {
				t.Fatal(err)
			}
			c := newS3(t, srv.CacheURL(bucket, tc.prefix), tc.copyPart)
			res, err := WriteCache(context.Background(), c, items, opts)
			if err != nil {
				t.Fatal(err)
			}
			want, got := listFiles(t, dir), bucketFiles(t, srv, bucket, tc.prefix)
			if !mapsEqual(want, got) {
				t.Errorf("the bucket holds %q, the folder %q", keys(got), keys(want))
			}
			for k, v := range want {
				if string(got[k]) != string(v) {
					t.Errorf("%s differs between the bucket and the folder", k)
				}
			}
			if len(res.Written) != len(want) {
				t.Errorf("WriteCache reports %d files written, the folder has %d", len(res.Written), len(want))
			}
			if up := srv.Uploads(bucket); len(up) != 0 {
				t.Errorf("multipart uploads left: %q", up)
			}
			if n, err := VerifyCache(context.Background(), c, key.Public()); err != nil || n != len(items) {
				t.Errorf("VerifyCache: %d narinfos, %v; want %d", n, err, len(items))
			}

			first, from := srv.Requests(0)
			if writes(first, "/nar/") == 0 {
				t.Fatalf("the access log shows no NAR written by the first publish:\n%s", strings.Join(first, "\n"))
			}
			res, err = WriteCache(context.Background(), c, items, opts)
			if err != nil {
				t.Fatal(err)
			}
			lines, _ := srv.Requests(from)
			if len(res.Written) != 0 || res.Skipped != len(items) {
				t.Errorf("writing again wrote %q and skipped %d; want nothing written, %d skipped", res.Written, res.Skipped, len(items))
			}
			if n := writes(lines, ""); n != 0 {
				t.Errorf("writing again made %d writes:\n%s", n, strings.Join(lines, "\n"))
			}
			if n := count(lines, "s3_GetObject ", "/nar/"); n != 0 {
				t.Errorf("writing again read %d NARs:\n%s", n, strings.Join(lines, "\n"))
			}
		})
	}
}

func keys(m map[string][]byte) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

// faultProxy is a reverse proxy in front of srv whose hook sees every
// request first: it may answer it itself (a status), or let it through
// (0).
func faultProxy(t *testing.T, srv *s3test.Server, hook func(*http.Request) int) string {
	t.Helper()
	target, _ := url.Parse(srv.URL)
	rp := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(target)
		r.Out.Host = r.In.Host // the request is signed for the proxy's host
	}, ErrorLog: log.New(io.Discard, "", 0)}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if code := hook(r); code != 0 {
			w.WriteHeader(code)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	return ts.Listener.Addr().String()
}

// killAtSecondPart is the address of a faultProxy to srv that kills the
// server when the second part of a multipart upload comes, dropping the
// connection: a publish killed in the middle of a large NAR.
func killAtSecondPart(t *testing.T, srv *s3test.Server) string {
	var parts atomic.Int32
	return faultProxy(t, srv, func(r *http.Request) int {
		if r.Method == http.MethodPut && r.URL.Query().Has("partNumber") && parts.Add(1) == 2 {
			srv.Stop()
			panic(http.ErrAbortHandler) // the connection drops
		}
		return 0
	})
}

// cacheURLAt is srv's cache URL for bucket, reached at addr.
func cacheURLAt(srv *s3test.Server, bucket, addr string) string {
	return strings.Replace(srv.CacheURL(bucket, ""), srv.Addr, addr, 1)
}

// TestS3Faults: the server killed in the middle of a multipart upload,
// or answering 503 for a while. A publish that fails names the item and
// the bucket, leaves no narinfo without its NAR, and the same publish
// completes the cache once the server is back, with no multipart upload
// left.
func TestS3Faults(t *testing.T) {
	saved := S3MaxBackoff
	S3MaxBackoff = 50 * 1e6 // 50 ms: the retries run out quickly
	t.Cleanup(func() { S3MaxBackoff = saved })
	srv := s3test.Start(t)
	items := bigItem(t, testItems(t), 12<<20)
	key := testKey(t, "s3-faults-1")
	opts := Options{StoreDir: testStore, Compression: CompressionZstd, Key: key}

	t.Run("killed mid-upload", func(t *testing.T) {
		srv.CreateBucket("killed")
		c := newS3(t, cacheURLAt(srv, "killed", killAtSecondPart(t, srv)), 0)
		_, err := WriteCache(context.Background(), c, items, opts)
		if err == nil {
			t.Fatal("the publish succeeded with the server killed")
		}
		big := items[len(items)-1].Path
		for _, want := range []string{string(big), "s3://killed"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not name %s", err, want)
			}
		}
		srv.Restart()
		if up := srv.Uploads("killed"); len(up) == 0 {
			t.Error("the killed run left no multipart upload: it was not killed mid-upload")
		}
		for k := range srv.Objects("killed") {
			if strings.HasSuffix(k, ".narinfo") {
				t.Errorf("a narinfo was published by the failed run: %s", k)
			}
		}
		if _, err := WriteCache(context.Background(), c, items, opts); err != nil {
			t.Fatalf("the publish does not complete once the server is back: %v", err)
		}
		if up := srv.Uploads("killed"); len(up) != 0 {
			t.Errorf("multipart uploads left: %q", up)
		}
		if n, err := VerifyCache(context.Background(), c, key.Public()); err != nil || n != len(items) {
			t.Errorf("VerifyCache: %d narinfos, %v; want %d", n, err, len(items))
		}
		for k := range srv.Objects("killed") {
			if strings.Contains(k, ".upload-") {
				t.Errorf("a temporary object is left: %s", k)
			}
		}
	})

	t.Run("503 for a while", func(t *testing.T) {
		srv.CreateBucket("unavailable")
		var mu sync.Mutex
		seen := map[string]int{}
		addr := faultProxy(t, srv, func(r *http.Request) int {
			mu.Lock()
			defer mu.Unlock()
			req := r.Method + " " + r.URL.String()
			if seen[req]++; seen[req] <= S3Attempts-1 { // every request fails but its last attempt
				return http.StatusServiceUnavailable
			}
			return 0
		})
		c := newS3(t, cacheURLAt(srv, "unavailable", addr), 0)
		if _, err := WriteCache(context.Background(), c, items, opts); err != nil {
			t.Fatalf("retries do not get through 503s: %v", err)
		}
		if n, err := VerifyCache(context.Background(), c, key.Public()); err != nil || n != len(items) {
			t.Errorf("VerifyCache: %d narinfos, %v; want %d", n, err, len(items))
		}
	})

	t.Run("503 for ever", func(t *testing.T) {
		srv.CreateBucket("down")
		var n atomic.Int32
		addr := faultProxy(t, srv, func(r *http.Request) int {
			if r.Method == http.MethodPut {
				n.Add(1)
				return http.StatusServiceUnavailable
			}
			return 0
		})
		c := newS3(t, cacheURLAt(srv, "down", addr), 0)
		_, err := WriteCache(context.Background(), c, items, opts)
		if err == nil || !strings.Contains(err.Error(), "s3://down") || !strings.Contains(err.Error(), "503") {
			t.Errorf("error %v does not name the bucket and the status", err)
		}
		if got := n.Load(); got > int32(S3Attempts*(len(items)+2)) {
			t.Errorf("%d PUT attempts: the retries are not bounded", got)
		}
		if objs := srv.Objects("down"); len(objs) != 0 {
			t.Errorf("objects written: %q", keys(objs))
		}
	})
}

// TestS3Refused: a missing bucket, wrong credentials or a server that
// does not answer are clear errors, and nothing is written.
func TestS3Refused(t *testing.T) {
	saved := S3MaxBackoff
	S3MaxBackoff = 50 * 1e6
	t.Cleanup(func() { S3MaxBackoff = saved })
	srv := s3test.Start(t)
	srv.CreateBucket("exists")
	items := testItems(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	cases := []struct {
		name, url, secret string
		want              []string
	}{
		{"missing bucket", srv.CacheURL("missing", ""), "", []string{"s3://missing", "does not exist"}},
		{"wrong secret", srv.CacheURL("exists", ""), "wrong", []string{"s3://exists", "refused", "credentials"}},
		{"no server", cacheURLAt(srv, "exists", closed), "", []string{"s3://exists", closed}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.secret != "" {
				t.Setenv("AWS_SECRET_ACCESS_KEY", tc.secret)
			}
			c := newS3(t, tc.url, 0)
			_, err := WriteCache(context.Background(), c, items, Options{StoreDir: testStore})
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if objs := srv.Objects("exists"); len(objs) != 0 {
				t.Errorf("objects written: %q", keys(objs))
			}
		})
	}
}

func TestParseS3URL(t *testing.T) {
	cases := []struct {
		in      string
		want    S3Location
		wantErr string
	}{
		{in: "s3://b", want: S3Location{Bucket: "b", Region: "us-east-1"}},
		{in: "s3://b/p/q/?region=eu-west-1&endpoint=127.0.0.1:7070&scheme=http&profile=ci",
			want: S3Location{Bucket: "b", Prefix: "p/q", Region: "eu-west-1", Endpoint: "http://127.0.0.1:7070", Profile: "ci"}},
		{in: "s3://b?endpoint=minio.example.org", want: S3Location{Bucket: "b", Region: "us-east-1", Endpoint: "https://minio.example.org"}},
		{in: "s3://b?endpoint=http://u:secret@h:1", want: S3Location{Bucket: "b", Region: "us-east-1", Endpoint: "http://u:secret@h:1"}},
		{in: "s3://b?compression=xz", wantErr: `unknown parameter "compression"`},
		{in: "s3://b?scheme=ftp", wantErr: "not http or https"},
		{in: "s3://b/../x", wantErr: "not a clean folder"},
		{in: "s3:///p", wantErr: "want s3://BUCKET"},
		{in: "s3://b?endpoint=ftp://h:secret@x", wantErr: "ftp://h:xxxxx@x"},
	}
	for _, tc := range cases {
		got, err := ParseS3URL(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseS3URL(%q): %v, want an error with %q", tc.in, err, tc.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "secret") {
				t.Errorf("ParseS3URL(%q): the error shows the password: %v", tc.in, err)
			}
			continue
		}
		if err != nil || *got != tc.want {
			t.Errorf("ParseS3URL(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
		if strings.Contains(got.String(), "secret") {
			t.Errorf("%q prints as %s, with the password", tc.in, got)
		}
	}
}

// TestS3NotFound: reading a missing object is fs.ErrNotExist, as for a
// folder.
func TestS3NotFound(t *testing.T) {
	srv := s3test.Start(t)
	srv.CreateBucket("empty")
	for _, c := range []Reader{Dir(t.TempDir()), newS3(t, srv.CacheURL("empty", "x"), 0)} {
		if _, err := c.Open(context.Background(), "nix-cache-info"); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: Open of a missing file: %v, want fs.ErrNotExist", c, err)
		}
		if _, err := c.Size(context.Background(), "nar/x.nar"); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: Size of a missing file: %v, want fs.ErrNotExist", c, err)
		}
	}
}

// TestS3NARsAlreadyThere: a bucket holding the NARs of a closure but not
// its narinfos (a publish that failed after its NARs), one NAR broken (cut
// short): the next publish keeps the sound NARs (not put again), replaces
// the broken one, and the bucket then holds the folder cache's bytes.
func TestS3NARsAlreadyThere(t *testing.T) {
	srv := s3test.Start(t)
	srv.CreateBucket("again")
	items := testItems(t)
	key := testKey(t, "s3-again-1")
	opts := Options{StoreDir: testStore, Compression: CompressionZstd, Key: key}
	dir := t.TempDir()
	if _, err := Write(dir, items, opts); err != nil {
		t.Fatal(err)
	}
	want := listFiles(t, dir)
	ctx := context.Background()
	client := srv.Client()
	var nars []string
	for name, data := range want {
		if !strings.HasPrefix(name, "nar/") {
			continue
		}
		nars = append(nars, name)
		if len(nars) == 1 {
			data = data[:len(data)/2] // broken
		}
		if _, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("again"), Key: aws.String(name), Body: bytes.NewReader(data)}); err != nil {
			t.Fatal(err)
		}
	}
	if len(nars) != len(items) {
		t.Fatalf("the folder cache has %d NARs, want %d", len(nars), len(items))
	}
	_, from := srv.Requests(0)
	res, err := WriteCache(ctx, newS3(t, srv.CacheURL("again", ""), 0), items, opts)
	if err != nil {
		t.Fatal(err)
	}
	got := bucketFiles(t, srv, "again", "")
	for name, data := range want {
		if !bytes.Equal(got[name], data) {
			t.Errorf("%s differs between the bucket and the folder", name)
		}
	}
	if len(got) != len(want) {
		t.Errorf("the bucket holds %q, the folder %q", keys(got), keys(want))
	}
	for _, f := range res.Written {
		if strings.HasPrefix(f, "nar/") && f != nars[0] {
			t.Errorf("%s, already there, is reported written", f)
		}
	}
	if !slices.Contains(res.Written, nars[0]) {
		t.Errorf("the broken NAR %s is not reported written: %q", nars[0], res.Written)
	}
	lines, _ := srv.Requests(from)
	if writes(lines, nars[0]) == 0 {
		t.Errorf("no write of the broken NAR %s:\n%s", nars[0], strings.Join(lines, "\n"))
	}
	for _, name := range nars[1:] {
		if n := writes(lines, name); n != 0 {
			t.Errorf("%d writes of %s, already there:\n%s", n, name, strings.Join(lines, "\n"))
		}
	}
}

// TestS3NAROutgrowsItsBuffer: a NAR larger than its item's NAR size said
// (its buffer, sized for it, overflows) moves into a part and goes up in
// parts; the object holds every byte, and no upload is left.
func TestS3NAROutgrowsItsBuffer(t *testing.T) {
	srv := s3test.Start(t)
	srv.CreateBucket("grow")
	c := newS3(t, srv.CacheURL("grow", ""), 0)
	data := make([]byte, 12<<20+12345)
	rand.Read(data)
	it := &Item{Path: testPath(testStore, "grow", "grow-1.0"), NarSize: 1000}
	ctx := context.Background()
	n, err := c.CreateNAR(ctx, it, CompressionNone)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Abort()
	for p := data; len(p) > 0; {
		k := min(len(p), 100_000)
		if _, err := n.Write(p[:k]); err != nil {
			t.Fatal(err)
		}
		p = p[k:]
	}
	_, from := srv.Requests(0)
	if written, err := n.Commit(ctx, "nar/grown.nar", int64(len(data))); err != nil || !written {
		t.Fatalf("Commit: %v, %v", written, err)
	}
	if got := srv.Objects("grow")["nar/grown.nar"]; !bytes.Equal(got, data) {
		t.Errorf("the object has %d bytes, not the %d written", len(got), len(data))
	}
	if up := srv.Uploads("grow"); len(up) != 0 {
		t.Errorf("multipart uploads left: %q", up)
	}
	lines, _ := srv.Requests(0)
	if parts := count(lines, "s3_UploadPart "); parts != 3 {
		t.Errorf("%d parts uploaded, want 3 (5 MiB, 5 MiB, the rest)", parts)
	}
	if n := count(lines[from:], "s3_CopyObject"); n != 1 {
		t.Errorf("%d copies to the NAR's name, want 1", n)
	}
}

// TestS3BufferBudget: the buffers of the NARs in flight stay within the
// budget: a NAR waits for its buffer until another gives one back.
func TestS3BufferBudget(t *testing.T) {
	const part = 1 << 20
	b := newBuffers(part, 2*part)
	ctx := context.Background()
	first, err := b.get(ctx, part)
	if err != nil {
		t.Fatal(err)
	}
	small, err := b.get(ctx, part/2)
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := b.get(short, part); err == nil {
		t.Fatal("a part given beyond the budget (1.5 parts taken of 2)")
	}
	b.put(first)
	again, err := b.get(ctx, part)
	if err != nil {
		t.Fatal(err)
	}
	if &again[:1][0] != &first[:1][0] {
		t.Error("a part given back is not given again: it is made anew")
	}
	b.put(small)
	b.put(again)
}

// TestS3PublishRequests: publishing a closure into an empty bucket asks
// for no narinfo (one listing tells they are all missing) and makes no
// HEAD before putting one (If-None-Match does): a PUT for each NAR and
// each narinfo. A narinfo put meanwhile by another writer is kept.
func TestS3PublishRequests(t *testing.T) {
	srv := s3test.Start(t)
	srv.CreateBucket("requests")
	items := testItems(t)
	opts := Options{StoreDir: testStore, Compression: CompressionZstd, Key: testKey(t, "s3-requests-1")}
	c := newS3(t, srv.CacheURL("requests", "p"), 0)
	_, from := srv.Requests(0)
	res, err := WriteCache(context.Background(), c, items, opts)
	if err != nil {
		t.Fatal(err)
	}
	lines, _ := srv.Requests(from)
	log := strings.Join(lines, "\n")
	if n := count(lines, "s3_GetObject", ".narinfo"); n != 0 {
		t.Errorf("%d narinfos asked for in an empty bucket:\n%s", n, log)
	}
	if n := count(lines, "s3_HeadObject"); n != 0 {
		t.Errorf("%d HEAD requests:\n%s", n, log)
	}
	if n := count(lines, "s3_ListObjectsV2"); n != 1 {
		t.Errorf("%d listings, want 1:\n%s", n, log)
	}
	if n, want := count(lines, "s3_PutObject"), 2*len(items)+1; n != want {
		t.Errorf("%d PUTs, want %d (each NAR, each narinfo, nix-cache-info):\n%s", n, want, log)
	}
	if len(res.Written) != 2*len(items)+1 {
		t.Errorf("%d files reported written, want %d", len(res.Written), 2*len(items)+1)
	}

	// Another writer's narinfo, put after the listing, is not replaced.
	theirs := []byte("StorePath: " + string(items[0].Path) + "\n")
	if created, err := c.PutNew(context.Background(), "elsewhere.narinfo", theirs); err != nil || !created {
		t.Fatalf("PutNew of a new name: %v, %v", created, err)
	}
	if created, err := c.PutNew(context.Background(), "elsewhere.narinfo", []byte("ours\n")); err != nil || created {
		t.Errorf("PutNew over an object: created %v, %v; want false", created, err)
	}
	if got := srv.Objects("requests")["p/elsewhere.narinfo"]; !bytes.Equal(got, theirs) {
		t.Errorf("the object put first was replaced: %q", got)
	}
}

// TestS3Absent: a listing tells which names are missing, up to the last
// name of the pages it may read (one for every listPage names asked
// about, and one more); names past them are left out, to be asked for.
func TestS3Absent(t *testing.T) {
	srv := s3test.Start(t)
	srv.CreateBucket("absent")
	c := newS3(t, srv.CacheURL("absent", "cache"), 0)
	ctx := context.Background()
	for _, k := range []string{"b", "d", "f", "h", "j", "l"} {
		if _, err := c.PutNew(ctx, k+".narinfo", []byte(k)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.PutNew(ctx, "nar/x.nar", []byte("x")); err != nil { // a common prefix, "nar/"
		t.Fatal(err)
	}
	names := []string{"a.narinfo", "b.narinfo", "e.narinfo", "k.narinfo", "z.narinfo"}
	c.listPage = 1000
	if got, want := c.Absent(ctx, names), map[string]bool{"a.narinfo": true, "e.narinfo": true, "k.narinfo": true, "z.narinfo": true}; !maps.Equal(got, want) {
		t.Errorf("a whole listing: absent %v, want %v", got, want)
	}
	// Two names a page: five names read 1 + 5/2 = 3 pages (b to l), and
	// leave out z; three names read 2 pages (b to h), and leave out k.
	c.listPage = 2
	if got, want := c.Absent(ctx, names), map[string]bool{"a.narinfo": true, "e.narinfo": true, "k.narinfo": true}; !maps.Equal(got, want) {
		t.Errorf("three pages of two: absent %v, want %v", got, want)
	}
	if got, want := c.Absent(ctx, []string{"a.narinfo", "b.narinfo", "k.narinfo"}), map[string]bool{"a.narinfo": true}; !maps.Equal(got, want) {
		t.Errorf("two pages of two: absent %v, want %v", got, want)
	}
}

// TestS3ListingRefused: a publisher whose listings are refused (no
// s3:ListBucket) asks for each narinfo instead: a closure already in the
// bucket is found there, and nothing is put again.
func TestS3ListingRefused(t *testing.T) {
	srv := s3test.Start(t)
	srv.CreateBucket("nolist")
	items := testItems(t)
	opts := Options{StoreDir: testStore, Compression: CompressionZstd, Key: testKey(t, "s3-nolist-1")}
	ctx := context.Background()
	if _, err := WriteCache(ctx, newS3(t, srv.CacheURL("nolist", ""), 0), items, opts); err != nil {
		t.Fatal(err)
	}
	addr := faultProxy(t, srv, func(r *http.Request) int {
		if r.Method == http.MethodGet && r.URL.Query().Get("list-type") == "2" {
			return http.StatusForbidden
		}
		return 0
	})
	c := newS3(t, cacheURLAt(srv, "nolist", addr), 0)
	if got := c.Absent(ctx, []string{"a.narinfo"}); got != nil {
		t.Errorf("Absent with the listing refused: %v, want nil (it cannot tell)", got)
	}
	_, from := srv.Requests(0)
	res, err := WriteCache(ctx, c, items, opts)
	if err != nil {
		t.Fatal(err)
	}
	lines, _ := srv.Requests(from)
	log := strings.Join(lines, "\n")
	if n := count(lines, "s3_GetObject", ".narinfo"); n != len(items) {
		t.Errorf("%d narinfos asked for, want each of the %d:\n%s", n, len(items), log)
	}
	if n := count(lines, "s3_PutObject"); n != 0 || len(res.Written) != 0 {
		t.Errorf("%d PUTs and %d files written into a bucket holding the closure:\n%s", n, len(res.Written), log)
	}
}
