package export

import (
	"testing"

	"github.com/storepack/storepack/format"
)

// TestEveryFormatHasAWriter: every format of package format's table has
// a writer, and the table names no other.
func TestEveryFormatHasAWriter(t *testing.T) {
	for _, f := range format.All() {
		if writers[f] == nil {
			t.Errorf("format %s has no writer", f)
		}
	}
	if len(writers) != len(format.All()) {
		t.Errorf("%d writers for %d formats", len(writers), len(format.All()))
	}
}
