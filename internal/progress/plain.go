package progress

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Plain logs exports as lines, for logs and pipes: one when an export
// starts, one every Config.Every while it runs, one when it ends:
//
//	storepack: export app-docker: 5 items, 245.1 MB
//	storepack: export app-docker: 120.3/245.1 MB, 3/5 items, 410 MB/s, 0:01 left
//	storepack: export app-docker: done in 7.2s: 245.1 MB, 5 items, 34.0 MB/s
//
// (or "failed after 7.2s"). It never writes a carriage return.
type Plain struct {
	w   io.Writer
	cfg Config

	mu   sync.Mutex
	cur  *Task
	m    meter
	last time.Time // when the last line was written
	tk   *ticker
}

// NewPlain returns a Plain logger writing to w.
func NewPlain(w io.Writer, c Config) *Plain {
	return &Plain{w: w, cfg: c.withDefaults(time.Second)}
}

// Begin logs that an export starts.
func (r *Plain) Begin(name string, totalBytes, totalItems int64) *Task {
	now := r.cfg.Now()
	t := NewTask(name, totalBytes, totalItems, now)
	r.mu.Lock()
	r.cur, r.last = t, now
	r.m.reset()
	r.m.add(now, 0)
	r.log(name, plural(totalItems, "item")+", "+formatBytes(totalBytes))
	if r.cfg.Interval > 0 {
		r.tk = startTicker(r.cfg.Interval, r.Tick)
	}
	r.mu.Unlock()
	return t
}

// Tick samples the running export and logs a progress line when the last
// line is Config.Every old: what the reporter's goroutine calls every
// Config.Interval.
func (r *Plain) Tick() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cur == nil {
		return
	}
	now := r.cfg.Now()
	s := r.cur.Snapshot()
	r.m.add(now, s.Bytes)
	if now.Sub(r.last) < r.cfg.Every {
		return
	}
	r.log(s.Name, strings.Join(stats(s, &r.m), ", "))
	r.last = now
}

// End logs how an export ended.
func (r *Plain) End(t *Task, err error) {
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
	if t == r.cur {
		r.cur = nil
	}
	s := t.Snapshot()
	r.log(s.Name, summary(s, r.cfg.Now(), err))
}

func (r *Plain) log(name, msg string) {
	fmt.Fprintf(r.w, "storepack: export %s: %s\n", name, msg)
}
