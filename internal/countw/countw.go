// Package countw counts the bytes written through a writer.
package countw

import "io"

// Writer writes to W and counts in N the bytes W took.
type Writer struct {
	// W is where the bytes go.
	W io.Writer
	// N is the number of bytes written to W so far.
	N int64
}

// Write writes p to W and adds what W took to N.
func (c *Writer) Write(p []byte) (int, error) {
	n, err := c.W.Write(p)
	c.N += int64(n)
	return n, err
}
