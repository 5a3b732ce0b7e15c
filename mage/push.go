package mage

import (
	"context"
	"os"

	"github.com/storepack/storepack"
)

// Push uploads each export's image (or index) to its push reference.
func Push(ctx context.Context) error {
	prepare(ctx)
	reports, err := storepack.PushExports(ctx, Options.WithDefaults())
	for _, r := range reports {
		storepack.WritePushReport(os.Stdout, r)
	}
	return err
}
