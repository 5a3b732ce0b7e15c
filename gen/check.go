package gen

import (
	"fmt"
	"runtime"
	"sync"

	"github.com/storepack/storepack/plan"
	"github.com/storepack/storepack/store"
	"github.com/storepack/storepack/store/nar"
)

// CheckError is a store item whose files no longer match the NAR hash or
// size the plan recorded for it (from the store database, or computed when
// a source was loaded), as `nix-store --verify --check-contents` reports.
type CheckError struct {
	// Path is the item; FSPath where its files were read from.
	Path   store.Path
	FSPath string
	// Recorded and Actual are the NAR hashes; the sizes are the NARs'
	// lengths.
	Recorded, Actual         store.Hash
	RecordedSize, ActualSize int64
}

func (e *CheckError) Error() string {
	what := string(e.Path)
	if e.FSPath != "" && e.FSPath != what {
		what += " (read from " + e.FSPath + ")"
	}
	msg := fmt.Sprintf("%s: contents do not match the recorded NAR hash: recorded %s, actual %s", what, e.Recorded, e.Actual)
	if e.RecordedSize != 0 && e.RecordedSize != e.ActualSize {
		msg += fmt.Sprintf(" (NAR size recorded %d, actual %d)", e.RecordedSize, e.ActualSize)
	}
	return msg
}

// CheckContents re-hashes the files of every distinct store item of plan
// and compares each NAR hash and size with the plan's, before anything is
// written, as `nix-store --verify --check-contents` does. Items are hashed
// GOMAXPROCS at a time; the error is that of the first failing item in
// plan order (a *CheckError when the contents differ).
func CheckContents(p *plan.Plan) error {
	var items []*plan.Item
	seen := map[store.Path]bool{}
	for i := range p.Exports {
		for j := range p.Exports[i].Systems {
			sys := &p.Exports[i].Systems[j]
			for k := range sys.Closure {
				if it := &sys.Closure[k]; !seen[it.Path] {
					seen[it.Path] = true
					items = append(items, it)
				}
			}
		}
	}
	errs := make([]error, len(items))
	next := make(chan int)
	var wg sync.WaitGroup
	for range max(1, min(runtime.GOMAXPROCS(0), len(items))) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				errs[i] = checkItem(items[i])
			}
		}()
	}
	for i := range items {
		next <- i
	}
	close(next)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// checkItem re-hashes one item.
func checkItem(it *plan.Item) error {
	fsPath := it.FSPath
	if fsPath == "" {
		fsPath = string(it.Path)
	}
	sum, size, err := nar.Hash(fsPath)
	if err != nil {
		return fmt.Errorf("checking %s: %w", it.Path, err)
	}
	actual := store.Hash(sum)
	if actual != it.NarHash || (it.NarSize != 0 && size != it.NarSize) {
		return &CheckError{Path: it.Path, FSPath: fsPath, Recorded: it.NarHash, Actual: actual, RecordedSize: it.NarSize, ActualSize: size}
	}
	return nil
}
