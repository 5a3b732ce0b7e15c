package progress_test

import (
	"fmt"
	"time"

	"github.com/storepack/storepack/internal/progress"
)

// summary is a Reporter of its own: it prints one line when each export
// ends, from the Task that NewTask made for it.
type summary struct{}

func (summary) Begin(name string, totalBytes, totalItems int64) *progress.Task {
	return progress.NewTask(name, totalBytes, totalItems, time.Now())
}

func (summary) End(t *progress.Task, err error) {
	s := t.Snapshot()
	fmt.Printf("%s: %d/%d items, %d/%d bytes, error %v\n", s.Name, s.Items, s.TotalItems, s.Bytes, s.TotalBytes, err)
}

// A Reporter implemented outside the package, as export.Options.Progress
// takes one: the work adds to the Task it gets (Bytes as files are read,
// Done as items finish).
func ExampleNewTask() {
	var r progress.Reporter = summary{}
	t := r.Begin("app", 3000, 2)
	t.Bytes().Add(1000) // read from the first item
	t.Done(1, 0)
	t.Done(1, 2000) // the second item, from a cache: not read
	r.End(t, nil)
	// Output:
	// app: 2/2 items, 3000/3000 bytes, error <nil>
}
