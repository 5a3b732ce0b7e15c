package binarycache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/storepack/storepack/store"
)

// The bounds of reaching an S3 server: each request is tried S3Attempts
// times in all, with pauses growing up to S3MaxBackoff (the AWS SDK's
// standard retryer: connection errors, timeouts, 500 and 503 are retried),
// and a request whose answer has not begun after S3HeaderTimeout has
// failed.
var (
	S3Attempts      = 4
	S3MaxBackoff    = 2 * time.Second
	S3HeaderTimeout = 60 * time.Second
)

// DefaultS3PartSize is the size of the parts of a multipart upload, and
// the size above which a NAR goes up in parts: smaller NARs are held in
// memory and put in one request at their final name. It is S3's smallest
// part.
const DefaultS3PartSize = 5 << 20

// DefaultS3BufferBudget is the memory the NARs being made and uploaded
// take at most, all at once: three parts, so that two NARs are made at
// once (one filling a part while the other's part goes up), or a large
// NAR fills a part while the one before it goes up. Small NARs take only
// what they need (CreateNAR), so that many of them are made at once.
const DefaultS3BufferBudget = 3 * DefaultS3PartSize

// s3MaxIdleConns is the idle connections to the server kept for the next
// requests: at least the requests that go at once.
const s3MaxIdleConns = 2 * narinfoJobs

// S3Location is an s3:// cache URL, as Nix names them:
// s3://BUCKET[/PREFIX]?region=R&endpoint=URL&scheme=http|https&profile=P.
type S3Location struct {
	// Bucket is the bucket; Prefix the folder of the cache in it ("" for
	// its top), without leading or trailing slashes.
	Bucket, Prefix string
	// Region is the region requests are signed for (default us-east-1,
	// as Nix).
	Region string
	// Endpoint is the server's URL (scheme, host, port), "" for AWS.
	Endpoint string
	// Profile is the shared configuration profile whose credentials are
	// used, "" for the default chain's.
	Profile string
}

// IsS3 reports whether loc is an s3:// URL.
func IsS3(loc string) bool { return strings.HasPrefix(loc, "s3://") }

// ParseS3URL parses an s3:// cache URL. It takes the query parameters
// region, endpoint (a URL, or HOST[:PORT] with scheme), scheme (http or
// https, default https) and profile; any other is an error.
func ParseS3URL(s string) (*S3Location, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("cache URL %q: %w", s, err)
	}
	if u.Scheme != "s3" || u.Host == "" || u.User != nil || u.Fragment != "" {
		return nil, fmt.Errorf("cache URL %q: want s3://BUCKET[/PREFIX]?region=R&endpoint=URL&scheme=http|https&profile=P", redactS3(s))
	}
	l := &S3Location{Bucket: u.Host, Prefix: strings.Trim(u.Path, "/"), Region: "us-east-1"}
	if strings.Contains(l.Prefix, "//") || slices.Contains(strings.Split(l.Prefix, "/"), "..") {
		return nil, fmt.Errorf("cache URL %q: the prefix %q is not a clean folder", redactS3(s), l.Prefix)
	}
	q := u.Query()
	scheme := "https"
	for k, v := range q {
		if len(v) != 1 {
			return nil, fmt.Errorf("cache URL %q: %s is given %d times", redactS3(s), k, len(v))
		}
		switch k {
		case "region":
			l.Region = v[0]
		case "endpoint":
			l.Endpoint = v[0]
		case "profile":
			l.Profile = v[0]
		case "scheme":
			if v[0] != "http" && v[0] != "https" {
				return nil, fmt.Errorf("cache URL %q: scheme %q is not http or https", redactS3(s), v[0])
			}
			scheme = v[0]
		default:
			return nil, fmt.Errorf("cache URL %q: unknown parameter %q (storepack takes region, endpoint, scheme and profile)", redactS3(s), k)
		}
	}
	if l.Endpoint != "" {
		if !strings.Contains(l.Endpoint, "://") {
			l.Endpoint = scheme + "://" + l.Endpoint
		}
		e, err := url.Parse(l.Endpoint)
		if err != nil || (e.Scheme != "http" && e.Scheme != "https") || e.Host == "" {
			return nil, fmt.Errorf("cache URL %q: endpoint %q is not an http(s) URL or HOST[:PORT]", redactS3(s), redactURL(l.Endpoint))
		}
	}
	return l, nil
}

// String is the cache's URL without its query, and the endpoint (its
// credentials, if it holds any, redacted) when set.
func (l *S3Location) String() string {
	s := "s3://" + path.Join(l.Bucket, l.Prefix)
	if l.Endpoint != "" {
		s += " at " + redactURL(l.Endpoint)
	}
	return s
}

// redactURL hides a password in u.
func redactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(an unparsable URL)"
	}
	return p.Redacted()
}

// redactS3 hides the credentials an s3:// URL might carry.
func redactS3(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(an unparsable s3:// URL)"
	}
	q := u.Query()
	if e := q.Get("endpoint"); e != "" {
		q.Set("endpoint", redactURL(e))
	}
	u.RawQuery = q.Encode()
	return u.Redacted()
}

// S3 is a binary cache in an S3 bucket: the objects of a cache folder,
// under the same names (below the prefix) and with the same bytes.
type S3 struct {
	loc    *S3Location
	client *s3.Client
	// PartSize is the size of multipart uploads' parts and the size
	// above which a NAR is uploaded in parts (at least 5 MiB).
	PartSize int64
	// CopyPartSize is the largest object copied in one request when a
	// NAR uploaded in parts is moved to its name; larger ones are copied
	// in parts of that size (S3 allows 5 GiB).
	CopyPartSize int64
	// BufferBudget bounds the memory of the NARs being made and uploaded
	// at once (see CreateNAR); at least twice PartSize.
	BufferBudget int64

	bufsOnce sync.Once
	bufs     *buffers

	// listPage is the most names a page of a listing holds (S3's 1000;
	// tests take fewer).
	listPage int32
}

// NewS3 returns the cache at the s3:// URL u. Credentials come from the
// AWS SDK's default chain (environment, shared configuration and
// credentials files, the URL's profile, then the machine's role).
func NewS3(u string) (*S3, error) {
	l, err := ParseS3URL(u)
	if err != nil {
		return nil, err
	}
	opts := []func(*config.LoadOptions) error{
		config.WithRegion(l.Region),
		config.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = S3Attempts
				o.MaxBackoff = S3MaxBackoff
				o.RateLimiter = ratelimit.None
			})
		}),
		config.WithHTTPClient(awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
			t.ResponseHeaderTimeout = S3HeaderTimeout
			// As many idle connections as requests go at once
			// (narinfoJobs narinfos, or the NARs), so that a server
			// that keeps connections open is not dialled again for
			// every request above the SDK's 10.
			t.MaxIdleConnsPerHost = s3MaxIdleConns
		})),
	}
	if l.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(l.Profile))
	}
	cfg, err := config.LoadDefaultConfig(context.Background(), opts...)
	if err != nil {
		return nil, fmt.Errorf("cache %s: AWS configuration: %w", l, err)
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		// No CRC32 of every body besides the signature's SHA-256 and the
		// NAR's own hashes (narinfo FileHash, NarHash), and no trailer
		// encoding of uploads: checksums only where S3 requires them.
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		// Bodies are sent at once, without Expect: 100-continue (which
		// the SDK adds above 2 MB): waiting for the server's 100 costs a
		// round trip for every NAR, and a refused PUT of a NAR is rare
		// (If-None-Match on a NAR already there).
		o.ContinueHeaderThresholdBytes = -1
		if l.Endpoint != "" {
			o.BaseEndpoint = aws.String(l.Endpoint)
			o.UsePathStyle = true
		}
	})
	return &S3{loc: l, client: client, PartSize: DefaultS3PartSize, CopyPartSize: 5 << 30,
		BufferBudget: DefaultS3BufferBudget, listPage: 1000}, nil
}

// S3Location returns the parsed URL of the cache.
func (c *S3) S3Location() *S3Location { return c.loc }

// Client is the cache's S3 client.
func (c *S3) Client() *s3.Client { return c.client }

// String is the cache's URL, without credentials.
func (c *S3) String() string { return c.loc.String() }

// Key is the object key of the file rel of the cache.
func (l *S3Location) Key(rel string) string {
	if l.Prefix == "" {
		return rel
	}
	return l.Prefix + "/" + rel
}

// Location is the s3:// URL of the file rel of the cache.
func (l *S3Location) Location(rel string) string { return "s3://" + l.Bucket + "/" + l.Key(rel) }

// Key is the object key of the file rel.
func (c *S3) Key(rel string) string { return c.loc.Key(rel) }

// Location is the s3:// URL of the file rel.
func (c *S3) Location(rel string) string { return c.loc.Location(rel) }

// fail wraps an SDK error about rel: a missing object wraps
// fs.ErrNotExist; a refusal names the credentials.
func (c *S3) fail(rel string, err error) error {
	var ae smithy.APIError
	var re *awshttp.ResponseError
	switch {
	case errors.As(err, &ae) && (ae.ErrorCode() == "NoSuchKey" || ae.ErrorCode() == "NotFound"):
		return fmt.Errorf("%s: %w", c.Location(rel), fs.ErrNotExist)
	case errors.As(err, &re) && re.HTTPStatusCode() == http.StatusNotFound:
		return fmt.Errorf("%s: %w", c.Location(rel), fs.ErrNotExist)
	}
	return fmt.Errorf("%s (%s): %w", c.Location(rel), c.loc, err)
}

// Open gets the object rel.
func (c *S3) Open(ctx context.Context, rel string) (io.ReadCloser, error) {
	out, err := c.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &c.loc.Bucket, Key: aws.String(c.Key(rel))})
	if err != nil {
		return nil, c.fail(rel, err)
	}
	return out.Body, nil
}

// Size asks for the size of the object rel (HEAD).
func (c *S3) Size(ctx context.Context, rel string) (int64, error) {
	out, err := c.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &c.loc.Bucket, Key: aws.String(c.Key(rel))})
	if err != nil {
		return 0, c.fail(rel, err)
	}
	return aws.ToInt64(out.ContentLength), nil
}

// NarInfos lists the narinfo objects right under the prefix.
func (c *S3) NarInfos(ctx context.Context) ([]string, error) {
	prefix := c.Key("")
	var names []string
	p := s3.NewListObjectsV2Paginator(c.client, &s3.ListObjectsV2Input{Bucket: &c.loc.Bucket, Prefix: &prefix, Delimiter: aws.String("/")})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing %s: %w", c.loc, c.bucketErr(err))
		}
		for _, o := range page.Contents {
			n := strings.TrimPrefix(aws.ToString(o.Key), prefix)
			if strings.HasSuffix(n, ".narinfo") && !strings.HasPrefix(n, ".") {
				names = append(names, n)
			}
		}
	}
	slices.Sort(names)
	return names, nil
}

// Absent lists the objects right under the prefix and returns those of
// names (files right under the cache) that are not among them. It lists
// at most a page (1000 names) for every thousand names and one more, so
// that a bucket holding many more narinfos than the closure costs few
// requests more than asking for each would; the names past the last page
// listed are left out, to be asked for one by one. A listing that fails (a
// publisher without s3:ListBucket) returns nil: every name is then asked
// for. An object put after the listing is no harm: narinfos are put with
// If-None-Match (PutNew), and an existing NAR is not replaced.
func (c *S3) Absent(ctx context.Context, names []string) map[string]bool {
	prefix := c.Key("")
	have := map[string]bool{}
	last, complete := "", false
	p := s3.NewListObjectsV2Paginator(c.client, &s3.ListObjectsV2Input{Bucket: &c.loc.Bucket, Prefix: &prefix,
		Delimiter: aws.String("/"), MaxKeys: aws.Int32(c.listPage)})
	for pages := 0; ; pages++ {
		if !p.HasMorePages() {
			complete = true
			break
		}
		if pages == 1+len(names)/int(c.listPage) {
			break
		}
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil
		}
		// A page holds keys and common prefixes, in the order of their
		// bytes: it tells about every name up to the greatest.
		for _, o := range page.Contents {
			n := strings.TrimPrefix(aws.ToString(o.Key), prefix)
			have[n] = true
			last = max(last, n)
		}
		for _, cp := range page.CommonPrefixes {
			last = max(last, strings.TrimPrefix(aws.ToString(cp.Prefix), prefix))
		}
	}
	absent := map[string]bool{}
	for _, n := range names {
		if !have[n] && (complete || n <= last) {
			absent[n] = true
		}
	}
	return absent
}

// bucketErr explains the errors of reaching the bucket itself.
func (c *S3) bucketErr(err error) error {
	var re *awshttp.ResponseError
	var ae smithy.APIError
	code := ""
	if errors.As(err, &ae) {
		code = ae.ErrorCode()
	}
	switch {
	case code == "NoSuchBucket" || (errors.As(err, &re) && re.HTTPStatusCode() == http.StatusNotFound):
		return fmt.Errorf("the bucket %q does not exist: %w", c.loc.Bucket, err)
	case code == "AccessDenied" || code == "InvalidAccessKeyId" || code == "SignatureDoesNotMatch" ||
		(errors.As(err, &re) && re.HTTPStatusCode() == http.StatusForbidden):
		return fmt.Errorf("access to the bucket %q refused: check the credentials (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE or the URL's profile, ~/.aws/credentials) and the region %s: %w", c.loc.Bucket, c.loc.Region, err)
	}
	return err
}

// Prepare checks that the bucket is there and that the credentials may
// reach it (HeadBucket).
func (c *S3) Prepare(ctx context.Context) error {
	if _, err := c.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &c.loc.Bucket}); err != nil {
		return fmt.Errorf("binary cache %s: %w", c.loc, c.bucketErr(err))
	}
	return nil
}

// contentType is the Content-Type Nix gives a cache's objects.
func contentType(rel string) string {
	switch {
	case rel == CacheInfoFile:
		return "text/x-nix-cache-info"
	case strings.HasSuffix(rel, ".narinfo"):
		return "text/x-nix-narinfo"
	}
	return "application/x-nix-nar"
}

// PutNew puts the object rel unless it exists: one PUT with
// If-None-Match: *, which S3 (and MinIO, Ceph, versitygw, ...) refuses
// with 412 when the name is taken. No HEAD first: a writer only puts a
// narinfo it found missing when it began, so the HEAD almost always
// answered 404 and cost a request (and, where the server closes every
// connection, a connection) per item. A server that ignores the
// condition replaces the object.
func (c *S3) PutNew(ctx context.Context, rel string, data []byte) (bool, error) {
	_, err := c.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: &c.loc.Bucket, Key: aws.String(c.Key(rel)), Body: bytes.NewReader(data),
		ContentLength: aws.Int64(int64(len(data))), ContentType: aws.String(contentType(rel)),
		IfNoneMatch: aws.String("*"),
	})
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.HTTPStatusCode() == http.StatusPreconditionFailed {
		return false, nil
	}
	if err != nil {
		return false, c.fail(rel, err)
	}
	return true, nil
}

// Remove deletes the object rel.
func (c *S3) Remove(ctx context.Context, rel string) error {
	if _, err := c.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &c.loc.Bucket, Key: aws.String(c.Key(rel))}); err != nil {
		return c.fail(rel, err)
	}
	return nil
}

// uploadName is the temporary object a NAR larger than a part goes up
// to, in parts, before it is copied to its name: named by the item's NAR
// hash and the compression, which give its bytes, so that a later run
// finds (and aborts) an upload a killed run left.
func uploadName(it *Item, compression string) string {
	return "nar/.upload-" + store.Encode32(it.NarHash[:]) + narExt(compression)
}

// abortUploads aborts the multipart uploads to the object rel.
func (c *S3) abortUploads(ctx context.Context, rel string) error {
	key := c.Key(rel)
	out, err := c.client.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: &c.loc.Bucket, Prefix: &key})
	if err != nil {
		return c.fail(rel, err)
	}
	for _, u := range out.Uploads {
		if aws.ToString(u.Key) != key {
			continue
		}
		if _, err := c.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &c.loc.Bucket, Key: &key, UploadId: u.UploadId}); err != nil {
			return c.fail(rel, err)
		}
	}
	return nil
}

// copy copies the object from to to, whose size is size: in one request
// up to CopyPartSize, else in a multipart upload of copied parts
// (aborted on failure).
func (c *S3) copy(ctx context.Context, from, to string, size int64) error {
	src := c.loc.Bucket + "/" + c.Key(from)
	key := aws.String(c.Key(to))
	if size <= c.CopyPartSize {
		_, err := c.client.CopyObject(ctx, &s3.CopyObjectInput{Bucket: &c.loc.Bucket, Key: key, CopySource: aws.String(src)})
		if err != nil {
			return c.fail(to, err)
		}
		return nil
	}
	mu, err := c.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &c.loc.Bucket, Key: key, ContentType: aws.String(contentType(to))})
	if err != nil {
		return c.fail(to, err)
	}
	var parts []types.CompletedPart
	for off, num := int64(0), int32(1); off < size; off, num = off+c.CopyPartSize, num+1 {
		end := min(off+c.CopyPartSize, size) - 1
		out, err := c.client.UploadPartCopy(ctx, &s3.UploadPartCopyInput{
			Bucket: &c.loc.Bucket, Key: key, UploadId: mu.UploadId, PartNumber: aws.Int32(num),
			CopySource: aws.String(src), CopySourceRange: aws.String(fmt.Sprintf("bytes=%d-%d", off, end)),
		})
		if err != nil {
			c.client.AbortMultipartUpload(context.WithoutCancel(ctx), &s3.AbortMultipartUploadInput{Bucket: &c.loc.Bucket, Key: key, UploadId: mu.UploadId})
			return c.fail(to, err)
		}
		parts = append(parts, types.CompletedPart{ETag: out.CopyPartResult.ETag, PartNumber: aws.Int32(num)})
	}
	_, err = c.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: &c.loc.Bucket, Key: key, UploadId: mu.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	})
	if err != nil {
		c.client.AbortMultipartUpload(context.WithoutCancel(ctx), &s3.AbortMultipartUploadInput{Bucket: &c.loc.Bucket, Key: key, UploadId: mu.UploadId})
		return c.fail(to, err)
	}
	return nil
}
