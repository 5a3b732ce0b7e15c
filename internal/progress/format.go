package progress

import (
	"fmt"
	"math"
	"strings"
	"sync"
	"time"
)

// units are the SI byte units sizes are shown in.
var units = [...]string{"B", "kB", "MB", "GB", "TB", "PB", "EB"}

// unitOf is the unit n is shown in: the largest whose 1 is at most n.
func unitOf(n int64) (div float64, unit string) {
	div = 1
	i := 0
	for f := float64(n); f >= 1000 && i < len(units)-1; f /= 1000 {
		div *= 1000
		i++
	}
	return div, units[i]
}

// number shows n bytes in the unit of div: whole bytes, else one decimal.
func number(n int64, div float64) string {
	if div == 1 {
		return fmt.Sprint(n)
	}
	return fmt.Sprintf("%.1f", float64(n)/div)
}

// formatBytes shows n bytes: "512 B", "245.1 MB".
func formatBytes(n int64) string {
	div, unit := unitOf(n)
	return number(n, div) + " " + unit
}

// formatPair shows bytes done of a total in the total's unit:
// "120.3/245.1 MB".
func formatPair(done, total int64) string {
	div, unit := unitOf(max(done, total))
	return number(done, div) + "/" + number(total, div) + " " + unit
}

// formatRate shows a rate in bytes a second: "410 MB/s", "41.2 MB/s".
func formatRate(bps float64) string {
	n := int64(math.Round(bps))
	div, unit := unitOf(n)
	v := float64(n) / div
	if div == 1 || v >= 100 {
		return fmt.Sprintf("%.0f %s/s", v, unit)
	}
	return fmt.Sprintf("%.1f %s/s", v, unit)
}

// formatClock shows a duration rounded up to whole seconds as m:ss, or
// h:mm:ss from an hour on: "0:01", "12:05", "1:02:03".
func formatClock(d time.Duration) string {
	s := int64(math.Ceil(d.Seconds()))
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}

// formatElapsed shows how long an export took: milliseconds under a
// second ("26ms"), tenths of seconds under a minute ("1.2s"), else m:ss.
func formatElapsed(d time.Duration) string {
	if d < time.Second {
		return fmt.Sprintf("%dms", d.Milliseconds())
	}
	if d < time.Minute {
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
	return formatClock(d)
}

// plural is "1 item", "5 items".
func plural(n int64, what string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, what)
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// stats are the parts of a progress line after the bar: bytes and items
// done of their totals, the rate and the time left when known. While
// items are left, the bytes shown stop at the total: the bytes counted
// while an item is read (a layer tar's) may pass its NAR size until it is
// done.
func stats(s Snapshot, m *meter) []string {
	done := s.Bytes
	if s.Items < s.TotalItems {
		done = min(done, s.TotalBytes)
	}
	parts := []string{formatPair(done, s.TotalBytes), fmt.Sprintf("%d/%d items", s.Items, s.TotalItems)}
	if rate, ok := m.rate(); ok {
		parts = append(parts, formatRate(rate))
		if left := s.TotalBytes - s.Bytes; rate > 0 && left >= 0 {
			parts = append(parts, formatClock(time.Duration(float64(left)/rate*float64(time.Second)))+" left")
		}
	}
	return parts
}

// summary says how an export ended: "done in 1.2s: 245.1 MB, 5 items,
// 204 MB/s" or "failed after 1.2s".
func summary(s Snapshot, now time.Time, err error) string {
	took := now.Sub(s.Start)
	if err != nil {
		return "failed after " + formatElapsed(took)
	}
	out := "done in " + formatElapsed(took) + ": " + formatBytes(s.Bytes) + ", " + plural(s.Items, "item")
	if took > 0 {
		out += ", " + formatRate(float64(s.Bytes)/took.Seconds())
	}
	return out
}

// fraction is how much of s is done, from 0 to 1: by bytes when the
// total is known, else by items.
func fraction(s Snapshot) float64 {
	var f float64
	switch {
	case s.TotalBytes > 0:
		f = float64(s.Bytes) / float64(s.TotalBytes)
	case s.TotalItems > 0:
		f = float64(s.Items) / float64(s.TotalItems)
	}
	return min(max(f, 0), 1)
}

// bar draws a bar inner characters wide between brackets:
// "[=======>      ]".
func bar(f float64, inner int) string {
	filled := int(f * float64(inner))
	if filled >= inner {
		return "[" + strings.Repeat("=", inner) + "]"
	}
	return "[" + strings.Repeat("=", filled) + ">" + strings.Repeat(" ", inner-filled-1) + "]"
}

// meterSamples bounds the samples a meter keeps: more than rateWindow
// holds at the terminal's 10 samples a second.
const meterSamples = 64

// rateWindow is the span of recent samples the rate is measured over;
// over less than minRateSpan it is not told.
const (
	rateWindow  = 5 * time.Second
	minRateSpan = 200 * time.Millisecond
)

// meter keeps recent samples of the bytes done, in a ring, to tell the
// current rate.
type meter struct {
	at    [meterSamples]time.Time
	bytes [meterSamples]int64
	n     int // samples held
	next  int // where the next goes
}

func (m *meter) reset() { m.n, m.next = 0, 0 }

func (m *meter) add(at time.Time, bytes int64) {
	m.at[m.next], m.bytes[m.next] = at, bytes
	m.next = (m.next + 1) % meterSamples
	m.n = min(m.n+1, meterSamples)
}

// rate is the bytes a second between the newest sample and the oldest
// within rateWindow of it (at least the one before it); ok is false with
// fewer than two samples or less than minRateSpan between them.
func (m *meter) rate() (float64, bool) {
	if m.n < 2 {
		return 0, false
	}
	newest := (m.next - 1 + meterSamples) % meterSamples
	base := (newest - 1 + meterSamples) % meterSamples
	for k := 2; k < m.n; k++ {
		i := (newest - k + meterSamples) % meterSamples
		if m.at[newest].Sub(m.at[i]) > rateWindow {
			break
		}
		base = i
	}
	dt := m.at[newest].Sub(m.at[base])
	if dt < minRateSpan {
		return 0, false
	}
	return float64(m.bytes[newest]-m.bytes[base]) / dt.Seconds(), true
}

// ticker calls tick every interval in a goroutine until stopped.
type ticker struct {
	stop chan struct{}
	done sync.WaitGroup
}

func startTicker(interval time.Duration, tick func()) *ticker {
	tk := &ticker{stop: make(chan struct{})}
	tk.done.Add(1)
	go func() {
		defer tk.done.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				tick()
			case <-tk.stop:
				return
			}
		}
	}()
	return tk
}

// Stop ends the goroutine and waits for it; a nil ticker does nothing.
func (tk *ticker) Stop() {
	if tk == nil {
		return
	}
	close(tk.stop)
	tk.done.Wait()
}
