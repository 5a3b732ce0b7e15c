package gen

import (
	"errors"
	"strings"
	"testing"

	"github.com/storepack/storepack/plan"
	"github.com/storepack/storepack/store"
)

func TestCheckContents(t *testing.T) {
	pl := mustGenerate(t, loadSpec(t, "testdata/specs/source", nil))
	if err := CheckContents(pl); err != nil {
		t.Fatalf("an untouched store fails the check: %v", err)
	}
	// The plan records another hash for hello: as if its files changed.
	closure := pl.Exports[0].Systems[0].Closure
	var hello *plan.Item
	for i := range closure {
		if closure[i].Path.Name() == "hello-2.12" {
			hello = &closure[i]
		}
	}
	actual := hello.NarHash
	hello.NarHash = store.Hash{}
	err := CheckContents(pl)
	var ce *CheckError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want a *CheckError", err)
	}
	if ce.Path != hello.Path || ce.Actual != actual || ce.Recorded != hello.NarHash {
		t.Errorf("CheckError = %+v; want path %s, actual %s", ce, hello.Path, actual)
	}
	if !strings.Contains(err.Error(), "(read from ") || !strings.Contains(err.Error(), string(hello.Path)) {
		t.Errorf("error does not name the item and where it was read: %v", err)
	}
}
