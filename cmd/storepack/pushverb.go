package main

import (
	sp "github.com/storepack/storepack"
)

var pushVerb = &verb{
	name:     "push",
	operands: "[EXPORT...]",
	summary:  "Upload the image (or index) of each export with a push reference (all, or those named) to its registry.",
	min:      0, max: -1,
	setup: specSetup(func(e *env, o sp.Options) error {
		reports, err := sp.PushExports(o.Context, o)
		for _, r := range reports {
			sp.WritePushReport(e.stdout, r)
		}
		return err
	}),
}
