// Package progress reports the progress of long-running work (storepack's
// exports) on stderr: a bar redrawn in place on a terminal (Terminal), plain
// log lines elsewhere (Plain), or nothing (Discard).
//
// The work and the reporting meet in a Task. A Reporter's Begin makes one
// for each export, with its totals (bytes and items, from the plan); the
// goroutines doing the work add to it as they go (Task.Bytes, an atomic
// counter the NAR walker adds each chunk to, and Task.Done for items
// finished), and the reporter samples it on its own clock. Adding is one
// atomic add: nothing is locked or allocated per file. A nil *Task ignores
// everything, so that work without a reporter pays nothing.
package progress

import (
	"io"
	"os"
	"sync/atomic"
	"time"
)

// Reporter shows the progress of exports, one at a time: Begin when one
// starts, with its totals, End when it is over (err is nil on success).
// The Task Begin returns is what the work updates; it may be nil (nothing
// is counted then).
type Reporter interface {
	Begin(name string, totalBytes, totalItems int64) *Task
	End(t *Task, err error)
}

// Discard is the Reporter that shows nothing and counts nothing.
var Discard Reporter = discard{}

type discard struct{}

func (discard) Begin(string, int64, int64) *Task { return nil }
func (discard) End(*Task, error)                 {}

// Task is the progress of one export: its totals, fixed when it begins,
// and what is done, counted by the work from any goroutine. Its methods
// may be called on a nil *Task, which counts nothing.
type Task struct {
	name       string
	totalBytes int64
	totalItems int64
	start      time.Time
	bytes      atomic.Int64
	items      atomic.Int64
}

// NewTask makes the Task of an export named name that starts at start,
// for Reporters implemented outside this package.
func NewTask(name string, totalBytes, totalItems int64, start time.Time) *Task {
	return &Task{name: name, totalBytes: totalBytes, totalItems: totalItems, start: start}
}

// Bytes is the counter of bytes done, for the NAR walker (nar.Stream) to
// add each chunk to as it hands it on; nil for a nil Task. With Done, it
// makes a Task a nar.Counter.
func (t *Task) Bytes() *atomic.Int64 {
	if t == nil {
		return nil
	}
	return &t.bytes
}

// Done counts items finished, with the bytes of theirs that the counter
// has not seen: a store item read through the counter adds its planned
// NAR size less the bytes counted while reading it (0 for a NAR, the
// difference in framing for a layer tar), so that the bytes done reach
// the total exactly; items not read at all (a cached layer's, an entry
// already in a binary cache) add their whole NAR size.
func (t *Task) Done(items, bytes int64) {
	if t == nil {
		return
	}
	if bytes != 0 {
		t.bytes.Add(bytes)
	}
	t.items.Add(items)
}

// Snapshot is a Task's state at one moment.
type Snapshot struct {
	Name              string
	Start             time.Time
	Bytes, TotalBytes int64
	Items, TotalItems int64
}

// Snapshot reads t's counters.
func (t *Task) Snapshot() Snapshot {
	if t == nil {
		return Snapshot{}
	}
	return Snapshot{
		Name: t.name, Start: t.start,
		Bytes: t.bytes.Load(), TotalBytes: t.totalBytes,
		Items: t.items.Load(), TotalItems: t.totalItems,
	}
}

// Config tunes a Terminal or Plain reporter; the zero value gives the
// defaults.
type Config struct {
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Interval is how often a goroutine of the reporter samples the
	// running export and redraws (default 100ms on a terminal, 1s for
	// plain lines). Negative: no goroutine; the caller calls Tick.
	Interval time.Duration
	// Delay is how long an export runs before a Terminal shows its bar
	// (default 1s; negative: at once).
	Delay time.Duration
	// Every is the least time between two progress lines of a Plain
	// reporter (default 5s).
	Every time.Duration
	// Width is a Terminal's width in columns (default 80).
	Width int
}

func (c Config) withDefaults(interval time.Duration) Config {
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Interval == 0 {
		c.Interval = interval
	}
	if c.Delay == 0 {
		c.Delay = time.Second
	}
	if c.Every <= 0 {
		c.Every = 5 * time.Second
	}
	if c.Width <= 0 {
		c.Width = 80
	}
	return c
}

// Auto is the reporter for w: a Terminal when w is a terminal (an *os.File
// whose descriptor is a TTY; Linux only), as wide as it when c.Width is 0,
// else Plain lines.
func Auto(w io.Writer, c Config) Reporter {
	if f, ok := w.(*os.File); ok {
		if cols, ok := terminalWidth(f); ok {
			if c.Width == 0 {
				c.Width = cols
			}
			return NewTerminal(w, c)
		}
	}
	return NewPlain(w, c)
}

// IsTerminal reports whether w is a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, ok = terminalWidth(f)
	return ok
}
