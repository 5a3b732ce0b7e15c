// Package s3test runs a real S3 server for tests: versitygw (its posix
// backend, on 127.0.0.1, with keys of its own and a temporary folder),
// found with internal/oracle's rule (a missing versitygw fails the test
// when the real tools are required, and skips it naming the tool
// otherwise).
package s3test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/storepack/storepack/internal/oracle"
)

// Server is a running versitygw.
type Server struct {
	// Addr is its host:port; URL is "http://" + Addr.
	Addr, URL string
	// Access and Secret are its keys; Region the region requests are
	// signed for.
	Access, Secret, Region string
	// Dir is its posix backend's folder (a bucket per sub-folder);
	// AccessLog its access log, one line per request.
	Dir, AccessLog string

	t      testing.TB
	bin    string
	cmd    *exec.Cmd
	exited chan error // cmd's Wait, once it returns; nil when stopped
}

// Start starts versitygw on a free loopback port, stopped when the test
// ends. It also points the AWS SDK's default credential chain at its keys
// (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY; no shared files, no instance
// metadata) for the rest of the test.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := oracle.Require(t, "versitygw")
	dir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	s := &Server{
		Addr: addr, URL: "http://" + addr,
		Access: "storepacktest", Secret: "storepacktestsecret", Region: "eu-west-1",
		Dir: filepath.Join(dir, "data"), AccessLog: filepath.Join(dir, "access.log"),
		t: t, bin: bin,
	}
	if err := os.Mkdir(s.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_ACCESS_KEY_ID", s.Access)
	t.Setenv("AWS_SECRET_ACCESS_KEY", s.Secret)
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "no-aws-config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "no-aws-credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	s.Restart()
	t.Cleanup(s.Stop)
	return s
}

// Restart starts the server again (after Stop), on the same port with
// the same folder.
func (s *Server) Restart() {
	s.t.Helper()
	cmd := exec.Command(s.bin, "--port", s.Addr, "--access", s.Access, "--secret", s.Secret,
		"--region", s.Region, "--access-log", s.AccessLog, "--quiet", "posix", s.Dir)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("versitygw: %v", err)
	}
	s.cmd = cmd
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.Addr, time.Second)
		if err == nil {
			c.Close()
			s.exited = exited
			return
		}
		select {
		case err := <-exited:
			s.t.Fatalf("versitygw exited (%v) before it listened on %s:\n%s", err, s.Addr, out.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-exited
			s.t.Fatalf("versitygw did not listen on %s within 20 s:\n%s", s.Addr, out.String())
		}
	}
}

// Stop kills the server (as a crash would: SIGKILL) and waits for it to
// exit; it does nothing when the server is stopped.
func (s *Server) Stop() {
	if s.exited == nil {
		return
	}
	s.cmd.Process.Kill()
	<-s.exited
	s.exited = nil
}

// Client is an S3 client of the server, signed with its keys.
func (s *Server) Client() *s3.Client {
	return s3.New(s3.Options{
		Region:       s.Region,
		BaseEndpoint: aws.String(s.URL),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(s.Access, s.Secret, ""),
	})
}

// CacheURL is the s3:// URL of the cache under prefix (may be "") in
// bucket on this server, as Nix writes them.
func (s *Server) CacheURL(bucket, prefix string) string {
	p := bucket
	if prefix != "" {
		p += "/" + prefix
	}
	return fmt.Sprintf("s3://%s?region=%s&endpoint=%s&scheme=http", p, s.Region, s.Addr)
}

// CreateBucket creates bucket, whose objects anyone may then read and
// list without credentials (a bucket policy), so that Nix, which has no
// S3 support on this Debian, substitutes from http://ADDR/BUCKET.
func (s *Server) CreateBucket(bucket string) {
	s.t.Helper()
	ctx := context.Background()
	c := s.Client()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &bucket}); err != nil {
		s.t.Fatalf("creating the bucket %s: %v", bucket, err)
	}
	policy, err := json.Marshal(map[string]any{
		"Version": "2012-10-17",
		"Statement": []map[string]any{
			{"Effect": "Allow", "Principal": "*", "Action": []string{"s3:GetObject"}, "Resource": []string{"arn:aws:s3:::" + bucket + "/*"}},
			{"Effect": "Allow", "Principal": "*", "Action": []string{"s3:ListBucket"}, "Resource": []string{"arn:aws:s3:::" + bucket}},
		},
	})
	if err != nil {
		s.t.Fatal(err)
	}
	if _, err := c.PutBucketPolicy(ctx, &s3.PutBucketPolicyInput{Bucket: &bucket, Policy: aws.String(string(policy))}); err != nil {
		s.t.Fatalf("the policy of the bucket %s: %v", bucket, err)
	}
}

// Objects returns every object of bucket: its key and bytes.
func (s *Server) Objects(bucket string) map[string][]byte {
	s.t.Helper()
	ctx := context.Background()
	c := s.Client()
	out := map[string][]byte{}
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: &bucket})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			s.t.Fatalf("listing %s: %v", bucket, err)
		}
		for _, o := range page.Contents {
			g, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: o.Key})
			if err != nil {
				s.t.Fatalf("getting %s/%s: %v", bucket, aws.ToString(o.Key), err)
			}
			var b strings.Builder
			_, err = bufio.NewReader(g.Body).WriteTo(&b)
			g.Body.Close()
			if err != nil {
				s.t.Fatalf("reading %s/%s: %v", bucket, aws.ToString(o.Key), err)
			}
			out[aws.ToString(o.Key)] = []byte(b.String())
		}
	}
	return out
}

// Uploads lists the keys of the multipart uploads in progress in bucket.
func (s *Server) Uploads(bucket string) []string {
	s.t.Helper()
	out, err := s.Client().ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{Bucket: &bucket})
	if err != nil {
		s.t.Fatalf("listing the multipart uploads of %s: %v", bucket, err)
	}
	var keys []string
	for _, u := range out.Uploads {
		keys = append(keys, aws.ToString(u.Key))
	}
	return keys
}

// Requests returns the access log's lines written since the log had
// `from` lines, and the number of lines it has now.
func (s *Server) Requests(from int) ([]string, int) {
	s.t.Helper()
	b, err := os.ReadFile(s.AccessLog)
	if err != nil && !os.IsNotExist(err) {
		s.t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(b) == 0 {
		lines = nil
	}
	if from > len(lines) {
		from = len(lines)
	}
	return lines[from:], len(lines)
}
