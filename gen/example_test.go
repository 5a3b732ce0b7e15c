package gen_test

import (
	"context"
	"fmt"
	"log"

	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/gen"
	"github.com/storepack/storepack/plan"
	"github.com/storepack/storepack/spec"
	"github.com/storepack/storepack/store"
)

// Planning the image of a closure without a store: the layers of an
// image of two items, the top one holding the folders and symlinks.
func ExamplePlanImage() {
	libc := store.Path("/gnu/store/7x3fb49z5m5zc3qp8gj7dskrpcrgc9mi-glibc-2.39")
	hello := store.Path("/gnu/store/qvzbpnllxraamdsh8qmz8rsp7xrsnj9q-hello-2.12")
	sys := &plan.System{
		Name:          "x86_64-linux",
		Roots:         []store.Path{hello},
		ClosureDigest: "sha256:7848a94837864b8b50d7e546e58c70671fd80dde25662023bcd15c5e27d1caf5",
		Closure: []plan.Item{
			{Path: libc, FSPath: "/nonexistent/glibc", References: []store.Path{}},
			{Path: hello, FSPath: "/nonexistent/hello", References: []store.Path{libc}},
		},
	}
	e := &spec.Export{
		Name: "hello", Format: format.Format("oci"), Entrypoint: []string{string(hello) + "/bin/hello"},
		Image: spec.Image{Tag: "hello:2.12", Compression: format.Gzip},
	}
	img, err := gen.PlanImage(context.Background(), e, sys)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(img.Tag, img.Platform.Architecture, img.Compression, img.Created)
	for _, l := range img.Layers {
		fmt.Printf("%s: %d items, %d entries\n", l.CreatedBy, len(l.Items), len(l.Entries))
	}
	// Output:
	// hello:2.12 amd64 gzip 1970-01-01 00:00:01 +0000 UTC
	// storepack: store item /gnu/store/7x3fb49z5m5zc3qp8gj7dskrpcrgc9mi-glibc-2.39: 1 items, 2 entries
	// storepack: store item /gnu/store/qvzbpnllxraamdsh8qmz8rsp7xrsnj9q-hello-2.12: 1 items, 2 entries
	// storepack: folders and symlinks: 0 items, 3 entries
}
