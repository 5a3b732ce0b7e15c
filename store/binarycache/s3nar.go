package binarycache

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"golang.org/x/sync/semaphore"
)

// buffers hands out the memory NARs are made in, within a budget of
// bytes: a NAR waits for its buffer while others' take the budget.
// Part-sized buffers are kept for the next NAR rather than made anew (a
// fresh 5 MiB buffer is zeroed, and its pages faulted in, every time).
type buffers struct {
	budget *semaphore.Weighted
	part   int64
	free   chan []byte
}

func newBuffers(part, budget int64) *buffers {
	budget = max(budget, 2*part)
	return &buffers{budget: semaphore.NewWeighted(budget), part: part, free: make(chan []byte, budget/part)}
}

// get returns an empty buffer of capacity size, once the budget allows.
func (b *buffers) get(ctx context.Context, size int64) ([]byte, error) {
	if err := b.budget.Acquire(ctx, size); err != nil {
		return nil, err
	}
	if size == b.part {
		select {
		case buf := <-b.free:
			return buf[:0], nil
		default:
		}
	}
	return make([]byte, 0, size), nil
}

// put gives back a buffer that get returned.
func (b *buffers) put(buf []byte) {
	if int64(cap(buf)) == b.part {
		select {
		case b.free <- buf:
		default:
		}
	}
	b.budget.Release(int64(cap(buf)))
}

// narBound is the most bytes the compressed NAR of a store item of n
// bytes may take: xz and zstd store incompressible input in raw blocks,
// a few bytes for every 64 KiB, besides their headers.
func narBound(n int64) int64 { return n + n/64 + 64<<10 }

// unsignedPayload sends a request's body as UNSIGNED-PAYLOAD: the SDK
// then does not read the body a first time to put its SHA-256 in the
// signature, nor the server a second time to check it. A NAR's body is
// instead checked by its CRC32C (crc32c), in a signed header, which the
// server verifies: it catches what breaks on the way, cheaply on both
// sides (the CPU's CRC32 instruction), and a NAR's authenticity is its
// narinfo's signature over its NarHash, which every reader checks
// (substituters, verify-cache), wherever the bytes went through.
func unsignedPayload(o *s3.Options) {
	o.APIOptions = append(o.APIOptions, v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware)
}

// castagnoli is Castagnoli's table, which MakeTable makes once, on first
// use: not in the runs that publish nothing.
func castagnoli() *crc32.Table { return crc32.MakeTable(crc32.Castagnoli) }

// crc32c is the x-amz-checksum-crc32c of bytes whose CRC32C is sum:
// big-endian, in base64.
func crc32c(sum uint32) *string {
	return aws.String(base64.StdEncoding.EncodeToString(binary.BigEndian.AppendUint32(nil, sum)))
}

// CreateNAR starts a NAR. It is made in memory: in a buffer of the size
// its compressed bytes may take (narBound of its NAR size), at most
// PartSize; a NAR that outgrows a part goes up in a multipart upload to a
// temporary object (uploadName), a part at a time while the next one is
// filled, and is then copied to its name. The buffers of the NARs being
// made and uploaded share BufferBudget: CreateNAR waits for its share.
func (c *S3) CreateNAR(ctx context.Context, it *Item, compression string) (NARFile, error) {
	c.bufsOnce.Do(func() { c.bufs = newBuffers(c.PartSize, c.BufferBudget) })
	size := c.PartSize
	if b := narBound(it.NarSize); b < c.PartSize/4 {
		size = b // a small NAR takes little; larger ones take a kept part
	}
	buf, err := c.bufs.get(ctx, size)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.Location(uploadName(it, compression)), err)
	}
	return &s3NAR{c: c, ctx: ctx, tmp: uploadName(it, compression), buf: buf}, nil
}

// s3NAR is a NAR on its way to a bucket.
type s3NAR struct {
	c   *S3
	ctx context.Context
	tmp string // the temporary object, when the NAR outgrows a part
	buf []byte // the bytes not sent yet: the NAR, or its last part
	crc uint32 // buf's CRC32C, updated as bytes come (while in cache)
	err error  // the first failure, which every later Write returns

	// The multipart upload, once the NAR outgrows a part: its ID, its
	// parts (the last one's ETag known once pending answers) and the
	// upload of the last part sent, when it has not been waited for.
	id       *string
	parts    []types.CompletedPart
	pending  chan partResult
	finished bool
}

// partResult is how the upload of a part ended: its ETag and CRC32C.
type partResult struct {
	etag, sum *string
	err       error
}

func (n *s3NAR) Write(p []byte) (int, error) {
	if n.err != nil {
		return 0, n.err
	}
	written := 0
	for len(p) > 0 {
		if len(n.buf) == cap(n.buf) {
			if err := n.full(); err != nil {
				n.err = err
				return written, err
			}
		}
		k := copy(n.buf[len(n.buf):cap(n.buf)], p)
		n.crc = crc32.Update(n.crc, castagnoli(), p[:k])
		n.buf, p, written = n.buf[:len(n.buf)+k], p[k:], written+k
	}
	return written, nil
}

// full makes room when buf is full and more bytes come: a buffer smaller
// than a part is moved into a part; a full part goes up (while the next
// one is filled), the first starting the multipart upload, after those
// to the same temporary object that earlier runs left are aborted.
func (n *s3NAR) full() error {
	c := n.c
	if int64(cap(n.buf)) < c.PartSize {
		b, err := c.bufs.get(n.ctx, c.PartSize)
		if err != nil {
			return c.fail(n.tmp, err)
		}
		b = append(b, n.buf...)
		c.bufs.put(n.buf)
		n.buf = b
		return nil
	}
	if n.id == nil {
		if err := c.abortUploads(n.ctx, n.tmp); err != nil {
			return err
		}
		out, err := c.client.CreateMultipartUpload(n.ctx, &s3.CreateMultipartUploadInput{
			Bucket: &c.loc.Bucket, Key: aws.String(c.Key(n.tmp)), ContentType: aws.String(contentType(n.tmp)),
			ChecksumAlgorithm: types.ChecksumAlgorithmCrc32c,
		})
		if err != nil {
			return c.fail(n.tmp, err)
		}
		n.id = out.UploadId
	}
	if err := n.wait(); err != nil {
		return err
	}
	part, crc := n.buf, n.crc
	n.buf, n.crc = nil, 0
	n.pending = make(chan partResult, 1)
	go func(num int32) {
		etag, sum, err := n.uploadPart(n.ctx, num, part, crc)
		c.bufs.put(part)
		n.pending <- partResult{etag, sum, err}
	}(n.nextPart())
	b, err := c.bufs.get(n.ctx, c.PartSize)
	if err != nil {
		return c.fail(n.tmp, err)
	}
	n.buf = b
	return nil
}

// nextPart adds a part to the list and returns its number.
func (n *s3NAR) nextPart() int32 {
	num := int32(len(n.parts) + 1)
	n.parts = append(n.parts, types.CompletedPart{PartNumber: aws.Int32(num)})
	return num
}

// uploadPart sends the part num of the multipart upload (unsigned, with
// its CRC32C, crc) and returns its ETag and CRC32C.
func (n *s3NAR) uploadPart(ctx context.Context, num int32, part []byte, crc uint32) (etag, sum *string, err error) {
	sum = crc32c(crc)
	out, err := n.c.client.UploadPart(ctx, &s3.UploadPartInput{
		Bucket: &n.c.loc.Bucket, Key: aws.String(n.c.Key(n.tmp)), UploadId: n.id, PartNumber: aws.Int32(num),
		Body: bytes.NewReader(part), ContentLength: aws.Int64(int64(len(part))), ChecksumCRC32C: sum,
	}, unsignedPayload)
	if err != nil {
		return nil, nil, n.c.fail(n.tmp, fmt.Errorf("part %d: %w", num, err))
	}
	return out.ETag, sum, nil
}

// wait waits for the upload of the part last sent, if any.
func (n *s3NAR) wait() error {
	if n.pending == nil {
		return nil
	}
	r := <-n.pending
	n.pending = nil
	if r.err != nil {
		return r.err
	}
	n.parts[len(n.parts)-1].ETag, n.parts[len(n.parts)-1].ChecksumCRC32C = r.etag, r.sum
	return nil
}

// release gives back the buffer being filled.
func (n *s3NAR) release() {
	if n.buf != nil {
		n.c.bufs.put(n.buf)
		n.buf = nil
	}
}

// abort aborts the multipart upload, if one was started.
func (n *s3NAR) abort() {
	if n.id == nil {
		return
	}
	n.wait()
	n.c.client.AbortMultipartUpload(context.WithoutCancel(n.ctx), &s3.AbortMultipartUploadInput{
		Bucket: &n.c.loc.Bucket, Key: aws.String(n.c.Key(n.tmp)), UploadId: n.id,
	})
	n.id = nil
}

func (n *s3NAR) Abort() {
	if n.finished {
		return
	}
	n.finished = true
	n.abort()
	n.release()
}

// Commit puts the NAR at rel, unless an object of its size is there
// (named by its hash: the same bytes). A NAR held in memory is put in one
// request; a NAR in parts gets its last part, and is completed and
// copied to rel.
func (n *s3NAR) Commit(ctx context.Context, rel string, size int64) (bool, error) {
	if n.finished {
		return false, errors.New("NAR committed twice")
	}
	n.finished = true
	defer n.release()
	if n.err != nil {
		n.abort()
		return false, n.err
	}
	inParts := n.id != nil
	if inParts {
		if err := n.complete(ctx); err != nil {
			n.abort()
			return false, err
		}
		defer n.c.Remove(context.WithoutCancel(ctx), n.tmp)
	}
	if inParts {
		if got, err := n.c.Size(ctx, rel); err == nil && got == size {
			return false, nil // named by its hash: the same bytes are there
		} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return false, err
		}
		return true, n.c.copy(ctx, n.tmp, rel, size)
	}
	// Put unless the name is taken (If-None-Match: *, no HEAD first):
	// named by its hash, an object there holds the same bytes, unless it
	// is broken (another size), which is then replaced. A server that
	// ignores If-None-Match replaces it with the same bytes.
	created, err := n.put(ctx, rel, true)
	if err == nil && !created {
		if got, err := n.c.Size(ctx, rel); err != nil || got == size {
			return false, err
		}
		created, err = n.put(ctx, rel, false)
	}
	return created, err
}

// put puts the NAR held in memory at rel (unsigned, with its CRC32C);
// with ifNone, not over an object already there (created is then
// false).
func (n *s3NAR) put(ctx context.Context, rel string, ifNone bool) (created bool, err error) {
	in := &s3.PutObjectInput{
		Bucket: &n.c.loc.Bucket, Key: aws.String(n.c.Key(rel)), Body: bytes.NewReader(n.buf),
		ContentLength: aws.Int64(int64(len(n.buf))), ContentType: aws.String(contentType(rel)),
		ChecksumCRC32C: crc32c(n.crc),
	}
	if ifNone {
		in.IfNoneMatch = aws.String("*")
	}
	_, err = n.c.client.PutObject(ctx, in, unsignedPayload)
	var re *awshttp.ResponseError
	switch {
	case ifNone && errors.As(err, &re) && re.HTTPStatusCode() == http.StatusPreconditionFailed:
		return false, nil
	case err != nil:
		return false, n.c.fail(rel, err)
	}
	return true, nil
}

// complete sends the last part and completes the multipart upload.
func (n *s3NAR) complete(ctx context.Context) error {
	if err := n.wait(); err != nil {
		return err
	}
	etag, sum, err := n.uploadPart(ctx, n.nextPart(), n.buf, n.crc)
	if err != nil {
		return err
	}
	n.parts[len(n.parts)-1].ETag, n.parts[len(n.parts)-1].ChecksumCRC32C = etag, sum
	_, err = n.c.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: &n.c.loc.Bucket, Key: aws.String(n.c.Key(n.tmp)), UploadId: n.id,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: n.parts},
	})
	if err != nil {
		return n.c.fail(n.tmp, err)
	}
	n.id = nil // completed: nothing to abort
	return nil
}
