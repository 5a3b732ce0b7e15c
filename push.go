package storepack

import (
	"context"
	"fmt"
	"io"

	"github.com/storepack/storepack/export"
)

// PushExports loads the spec, plans the selected exports and uploads the
// image (or image index) of each one that has a push reference to it,
// skipping the blobs the registry already has. Exports named in o.Exports
// must have one; with no names, every export that has one is pushed. It
// returns one report per push, in plan order.
func PushExports(ctx context.Context, o Options) ([]*export.PushReport, error) {
	o = o.WithDefaults()
	p, done, err := generate(o)
	if err != nil {
		return nil, err
	}
	defer done()
	var reports []*export.PushReport
	for i := range p.Exports {
		e := &p.Exports[i]
		if e.Push == "" {
			if len(o.Exports) > 0 {
				return reports, fmt.Errorf("export %q has no push reference", e.Name)
			}
			continue
		}
		r, err := export.Push(ctx, e, export.PushOptions{Plan: p, Cache: exportOptions(o).Cache})
		if err != nil {
			return reports, err
		}
		reports = append(reports, r)
	}
	if len(reports) == 0 {
		return nil, fmt.Errorf("%s: no export has a push reference", o.SpecDir)
	}
	return reports, nil
}

// Push is PushExports with a line per push written to o.Stderr.
func Push(o Options) error {
	o = o.WithDefaults()
	reports, err := PushExports(o.context(), o)
	for _, r := range reports {
		WritePushReport(o.Stderr, r)
	}
	return err
}

// WritePushReport writes one line about a push: the reference, the digest
// pushed, and how many layer blobs were uploaded and how many the
// registry already had.
func WritePushReport(w io.Writer, r *export.PushReport) {
	fmt.Fprintf(w, "%s\t%s\t%d layer blobs uploaded, %d already there", r.Ref, r.Digest, len(r.Uploaded), len(r.Skipped))
	if len(r.Mounted) > 0 {
		fmt.Fprintf(w, ", %d mounted from other repositories", len(r.Mounted))
	}
	fmt.Fprintln(w)
}
