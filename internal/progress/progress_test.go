package progress

import (
	"bytes"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a clock the test moves.
type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time { return c.now }

// step is one moment of an export: at that time since it began, the work
// adds bytes and items, then the reporter ticks (or the export ends).
type step struct {
	at           time.Duration
	bytes, items int64
	end          bool
	err          error
}

// ticking is a Reporter driven by the test.
type ticking interface {
	Reporter
	Tick()
}

// play runs one export of the given totals through r.
func play(r ticking, clock *fakeClock, totalBytes, totalItems int64, steps []step) {
	start := clock.now
	t := r.Begin("app-docker", totalBytes, totalItems)
	for _, s := range steps {
		clock.now = start.Add(s.at)
		t.Bytes().Add(s.bytes)
		t.Done(s.items, 0)
		if s.end {
			r.End(t, s.err)
			return
		}
		r.Tick()
	}
}

// long is an export of 245.1 MB in 5 items taking 2 seconds.
var long = []step{
	{at: 500 * time.Millisecond, bytes: 50_000_000, items: 1},
	{at: time.Second, bytes: 70_300_000, items: 2},
	{at: 1050 * time.Millisecond},
	{at: 1500 * time.Millisecond, bytes: 124_800_000, items: 2},
	{at: 2 * time.Second, end: true},
}

func TestTerminal(t *testing.T) {
	failed := errors.New("disk full")
	tests := []struct {
		name  string
		cfg   Config
		steps []step
		want  string
	}{
		{"quicker than the delay", Config{}, []step{
			{at: 500 * time.Millisecond, bytes: 245_100_000, items: 5},
			{at: 800 * time.Millisecond, end: true},
		}, ""},
		{"long", Config{}, long,
			"\rapp-docker  [========>        ]  120.3/245.1 MB  3/5 items  120 MB/s  0:02 left" +
				"\rapp-docker  [=================]  245.1/245.1 MB  5/5 items  163 MB/s  0:00 left" +
				"\rapp-docker  done in 2.0s: 245.1 MB, 5 items, 123 MB/s" + strings.Repeat(" ", 26) + "\n"},
		{"wide: the bar stops growing", Config{Width: 120}, long[:2],
			"\rapp-docker  [==============>               ]  120.3/245.1 MB  3/5 items  120 MB/s  0:02 left"},
		{"narrow: no bar, cut", Config{Width: 40}, long[:2],
			"\rapp-docker  120.3/245.1 MB  3/5 items  "},
		{"failed", Config{}, []step{
			{at: 1200 * time.Millisecond, bytes: 1_000, items: 0},
			{at: 1500 * time.Millisecond, end: true, err: failed},
		},
			"\rapp-docker  [>" + strings.Repeat(" ", 15) + "]  0.0/245.1 MB  0/5 items  833 B/s  81:41:59 left" +
				"\rapp-docker  failed after 1.5s" + strings.Repeat(" ", 50) + "\n"},
		{"ended past the delay between ticks", Config{}, []step{
			{at: 1100 * time.Millisecond, bytes: 245_100_000, items: 5, end: true},
		}, "\rapp-docker  done in 1.1s: 245.1 MB, 5 items, 223 MB/s\n"},
		{"no delay, too soon for a rate", Config{Delay: -1}, []step{
			{at: 100 * time.Millisecond, bytes: 1_000_000},
			{at: 150 * time.Millisecond, end: true},
		},
			"\rapp-docker  [>" + strings.Repeat(" ", 29) + "]  0.0/245.1 MB  0/5 items" +
				"\rapp-docker  [>" + strings.Repeat(" ", 29) + "]  1.0/245.1 MB  0/5 items" +
				"\rapp-docker  done in 150ms: 1.0 MB, 0 items, 6.7 MB/s" + strings.Repeat(" ", 17) + "\n"},
		{"no delay", Config{Delay: -1}, []step{{at: 0, end: true}},
			"\rapp-docker  [>" + strings.Repeat(" ", 29) + "]  0.0/245.1 MB  0/5 items" +
				"\rapp-docker  done in 0ms: 0 B, 0 items" + strings.Repeat(" ", 32) + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &fakeClock{time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)}
			cfg := tt.cfg
			cfg.Now, cfg.Interval = clock.Now, -1
			var out bytes.Buffer
			play(NewTerminal(&out, cfg), clock, 245_100_000, 5, tt.steps)
			if got := out.String(); got != tt.want {
				t.Errorf("output\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

func TestPlain(t *testing.T) {
	var steady []step
	for i := int64(1); i <= 5; i++ {
		steady = append(steady, step{at: time.Duration(i) * time.Second, bytes: 20_000_000, items: i % 2})
	}
	tests := []struct {
		name  string
		steps []step
		want  string
	}{
		{"quick", []step{{at: 300 * time.Millisecond, bytes: 245_100_000, items: 5, end: true}},
			"storepack: export app-docker: 5 items, 245.1 MB\n" +
				"storepack: export app-docker: done in 300ms: 245.1 MB, 5 items, 817 MB/s\n"},
		{"long: a line every 5s", append(steady, step{at: 7 * time.Second, bytes: 145_100_000, items: 2, end: true}),
			"storepack: export app-docker: 5 items, 245.1 MB\n" +
				"storepack: export app-docker: 100.0/245.1 MB, 3/5 items, 20.0 MB/s, 0:08 left\n" +
				"storepack: export app-docker: done in 7.0s: 245.1 MB, 5 items, 35.0 MB/s\n"},
		{"failed", []step{{at: 2 * time.Second, bytes: 5, end: true, err: errors.New("boom")}},
			"storepack: export app-docker: 5 items, 245.1 MB\n" +
				"storepack: export app-docker: failed after 2.0s\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &fakeClock{time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)}
			var out bytes.Buffer
			play(NewPlain(&out, Config{Now: clock.Now, Interval: -1}), clock, 245_100_000, 5, tt.steps)
			if got := out.String(); got != tt.want {
				t.Errorf("output\n%s\nwant\n%s", got, tt.want)
			}
			if strings.Contains(out.String(), "\r") {
				t.Error("a plain line holds a carriage return")
			}
		})
	}
}

func TestFormat(t *testing.T) {
	for _, tt := range []struct{ got, want string }{
		{formatBytes(0), "0 B"},
		{formatBytes(999), "999 B"},
		{formatBytes(1000), "1.0 kB"},
		{formatBytes(245_100_000), "245.1 MB"},
		{formatBytes(1_500_000_000_000), "1.5 TB"},
		{formatPair(512, 2048), "0.5/2.0 kB"},
		{formatPair(3, 900), "3/900 B"},
		{formatPair(2_000_000, 1_000_000), "2.0/1.0 MB"},
		{formatRate(0), "0 B/s"},
		{formatRate(41_230_000), "41.2 MB/s"},
		{formatRate(410_200_000), "410 MB/s"},
		{formatClock(0), "0:00"},
		{formatClock(1200 * time.Millisecond), "0:02"},
		{formatClock(61 * time.Second), "1:01"},
		{formatClock(3723 * time.Second), "1:02:03"},
		{formatElapsed(26 * time.Millisecond), "26ms"},
		{formatElapsed(1234 * time.Millisecond), "1.2s"},
		{formatElapsed(125 * time.Second), "2:05"},
		{strings.Join(stats(Snapshot{Bytes: 2100, TotalBytes: 2000, Items: 0, TotalItems: 1}, &meter{}), " "), "2.0/2.0 kB 0/1 items"},
		{strings.Join(stats(Snapshot{Bytes: 2100, TotalBytes: 2000, Items: 1, TotalItems: 1}, &meter{}), " "), "2.1/2.0 kB 1/1 items"},
		{bar(0, 5), "[>    ]"},
		{bar(0.5, 5), "[==>  ]"},
		{bar(1, 5), "[=====]"},
		{bar(1.5, 5), "[=====]"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

// TestNilTask checks that a nil Task (Discard's) counts nothing and does
// not fail.
func TestNilTask(t *testing.T) {
	task := Discard.Begin("x", 10, 1)
	if task != nil || task.Bytes() != nil {
		t.Fatalf("Discard made a task: %v", task)
	}
	task.Done(1, 10)
	if s := task.Snapshot(); s != (Snapshot{}) {
		t.Errorf("a nil task's snapshot is %+v", s)
	}
	Discard.End(task, nil)
}

// TestTicking runs both reporters with their own goroutine and real
// clock while several goroutines count, as exports do (run with -race).
func TestTicking(t *testing.T) {
	for _, mk := range []func(*syncBuffer) ticking{
		func(w *syncBuffer) ticking { return NewTerminal(w, Config{Interval: time.Millisecond, Delay: -1}) },
		func(w *syncBuffer) ticking {
			return NewPlain(w, Config{Interval: time.Millisecond, Every: time.Millisecond})
		},
	} {
		var out syncBuffer
		r := mk(&out)
		task := r.Begin("many", 4000, 40)
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 10 {
					task.Bytes().Add(60)
					task.Done(1, 40)
					time.Sleep(time.Millisecond)
				}
			}()
		}
		wg.Wait()
		r.End(task, nil)
		if s := task.Snapshot(); s.Bytes != s.TotalBytes || s.Items != s.TotalItems {
			t.Errorf("%T: counted %d bytes, %d items; want %d, %d", r, s.Bytes, s.Items, s.TotalBytes, s.TotalItems)
		}
		got := out.String()
		if last := got[strings.LastIndexAny(strings.TrimSuffix(got, "\n"), "\r\n")+1:]; !strings.Contains(last, "done in") || !strings.Contains(last, ": 4.0 kB, 40 items, ") {
			t.Errorf("%T: the output does not end with the summary:\n%q", r, got)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for the reporter's goroutine and the
// test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
