package main

import (
	"context"
	"flag"

	sp "github.com/storepack/storepack"
)

var pushVerb = &verb{
	name:     "push",
	operands: "[EXPORT...]",
	summary:  "Upload the image (or index) of each export with a push reference (all, or those named) to its registry.",
	min:      0, max: -1,
	setup: func(fs *flag.FlagSet) func(*env, []string) error {
		var f specFlags
		f.register(fs, false)
		return func(e *env, args []string) error {
			o := f.options(e, args)
			reports, err := sp.PushExports(context.Background(), o)
			for _, r := range reports {
				sp.WritePushReport(e.stdout, r)
			}
			if err != nil {
				return specError(o, err)
			}
			return nil
		}
	},
}
