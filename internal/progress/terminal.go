package progress

import (
	"io"
	"strings"
	"sync"
	"time"
)

// minRedraw is the least time between two draws of a Terminal's bar: at
// most about ten a second.
const minRedraw = 90 * time.Millisecond

// maxBar is the widest a Terminal's bar gets; below minBar it is left out.
const (
	maxBar = 30
	minBar = 5
)

// Terminal draws the running export's progress on one line of a terminal,
// redrawn in place (a carriage return, then the line padded over the
// previous one), once the export has run for Config.Delay:
//
//	app-docker  [=======>      ]  120.3/245.1 MB  3/5 items  410 MB/s  0:01 left
//
// When an export that showed its bar (or ran longer than the delay) ends,
// the bar is replaced by a final line, "app-docker  done in 3.2s: 245.1 MB,
// 5 items, 76.6 MB/s" or "app-docker  failed after 3.2s"; quicker exports
// print nothing. Lines are cut to the terminal's width, less one column.
type Terminal struct {
	w   io.Writer
	cfg Config

	mu      sync.Mutex
	cur     *Task
	m       meter
	drawn   bool      // the bar of cur is on screen
	last    time.Time // when it was drawn
	lastLen int       // the length of the line on screen
	tk      *ticker
}

// NewTerminal returns a Terminal writing to w.
func NewTerminal(w io.Writer, c Config) *Terminal {
	return &Terminal{w: w, cfg: c.withDefaults(100 * time.Millisecond)}
}

// Begin starts showing an export.
func (r *Terminal) Begin(name string, totalBytes, totalItems int64) *Task {
	now := r.cfg.Now()
	t := NewTask(name, totalBytes, totalItems, now)
	r.mu.Lock()
	r.cur, r.drawn, r.lastLen = t, false, 0
	r.m.reset()
	r.m.add(now, 0)
	r.mu.Unlock()
	r.Tick()
	if r.cfg.Interval > 0 {
		tk := startTicker(r.cfg.Interval, r.Tick)
		r.mu.Lock()
		r.tk = tk
		r.mu.Unlock()
	}
	return t
}

// Tick samples the running export and redraws its bar when it is due:
// what the reporter's goroutine calls every Config.Interval.
func (r *Terminal) Tick() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cur == nil {
		return
	}
	now := r.cfg.Now()
	s := r.cur.Snapshot()
	r.m.add(now, s.Bytes)
	if now.Sub(s.Start) < r.cfg.Delay || (r.drawn && now.Sub(r.last) < minRedraw) {
		return
	}
	r.draw(r.line(s))
	r.drawn, r.last = true, now
}

// End replaces the bar with the final line.
func (r *Terminal) End(t *Task, err error) {
	r.mu.Lock()
	tk := r.tk
	r.tk = nil
	r.mu.Unlock()
	tk.Stop() // not holding mu, which Tick takes
	r.mu.Lock()
	defer r.mu.Unlock()
	if t == nil {
		return
	}
	now := r.cfg.Now()
	s := t.Snapshot()
	if t == r.cur {
		r.cur = nil
		if !r.drawn && now.Sub(s.Start) < r.cfg.Delay {
			return
		}
	}
	r.draw(r.fit(s.Name + "  " + summary(s, now, err)))
	io.WriteString(r.w, "\n")
	r.drawn, r.lastLen = false, 0
}

// line is the bar line of s.
func (r *Terminal) line(s Snapshot) string {
	st := strings.Join(stats(s, &r.m), "  ")
	inner := min(r.cfg.Width-1-len(s.Name)-2-2-2-len(st), maxBar)
	if inner < minBar {
		return r.fit(s.Name + "  " + st)
	}
	return r.fit(s.Name + "  " + bar(fraction(s), inner) + "  " + st)
}

// fit cuts line to the width less one column (writing in the last one
// makes some terminals wrap).
func (r *Terminal) fit(line string) string {
	if n := r.cfg.Width - 1; len(line) > n {
		return line[:max(n, 0)]
	}
	return line
}

// draw writes line over the one on screen: a carriage return, the line,
// and blanks over what is left of the previous one.
func (r *Terminal) draw(line string) {
	pad := max(r.lastLen-len(line), 0)
	io.WriteString(r.w, "\r"+line+strings.Repeat(" ", pad))
	r.lastLen = len(line)
}
