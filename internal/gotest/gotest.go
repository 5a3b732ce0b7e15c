// Package gotest reads the events of `go test -json` and prints what a
// plain `go test` prints (each package's ok or FAIL line, and the output
// of failing tests), then, at the end, every skipped test with the reason
// it gave and a count of the tests that passed, failed and were skipped.
// `mage test` runs the suite through it, so that a test skipped where the
// real tools are required does not go unnoticed.
package gotest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
)

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action  string
	Package string
	Test    string
	Output  string
}

// Skip is a skipped test and the reason it printed.
type Skip struct {
	Package, Test, Reason string
}

// Summary counts the tests (subtests included) of a run.
type Summary struct {
	Passed, Failed int
	Skipped        []Skip
}

// Report copies the test output read from r (go test -json) to w as a
// plain go test run prints it, then the skipped tests and the counts. It
// returns the summary; a line that is not an event is copied as it is.
func Report(r io.Reader, w io.Writer) (Summary, error) {
	var sum Summary
	type key struct{ pkg, test string }
	outputs := map[key][]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var ev event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &ev) != nil {
			fmt.Fprintf(w, "%s\n", line)
			continue
		}
		k := key{ev.Package, ev.Test}
		switch {
		case ev.Action == "output" && ev.Test == "":
			// Package lines: "ok  pkg 1.2s", "FAIL pkg", build errors.
			// The bare PASS that -json runs print is left out, as
			// go test leaves it out without -v.
			if ev.Output != "PASS\n" {
				io.WriteString(w, ev.Output)
			}
		case ev.Action == "build-output":
			io.WriteString(w, ev.Output)
		case ev.Test == "":
		case ev.Action == "output":
			outputs[k] = append(outputs[k], ev.Output)
		case ev.Action == "pass":
			sum.Passed++
			delete(outputs, k)
		case ev.Action == "fail":
			sum.Failed++
			writeFailure(w, outputs[k])
			delete(outputs, k)
		case ev.Action == "skip":
			sum.Skipped = append(sum.Skipped, Skip{ev.Package, ev.Test, skipReason(outputs[k])})
			delete(outputs, k)
		}
	}
	if err := sc.Err(); err != nil {
		return sum, err
	}
	slices.SortStableFunc(sum.Skipped, func(a, b Skip) int {
		return strings.Compare(a.Package+" "+a.Test, b.Package+" "+b.Test)
	})
	if len(sum.Skipped) > 0 {
		fmt.Fprintf(w, "\n%d skipped:\n", len(sum.Skipped))
		for _, s := range sum.Skipped {
			fmt.Fprintf(w, "  %s %s: %s\n", s.Package, s.Test, s.Reason)
		}
	}
	fmt.Fprintf(w, "\ntests: %d passed, %d failed, %d skipped\n", sum.Passed, sum.Failed, len(sum.Skipped))
	return sum, nil
}

// writeFailure writes the output of a failed test as go test prints it:
// its "--- FAIL" line (which -json gives last), then what it logged.
func writeFailure(w io.Writer, outputs []string) {
	var log []string
	for _, o := range outputs {
		switch t := strings.TrimSpace(o); {
		case strings.HasPrefix(t, "=== "):
		case strings.HasPrefix(t, "--- FAIL"):
			io.WriteString(w, o)
		default:
			log = append(log, o)
		}
	}
	for _, o := range log {
		io.WriteString(w, o)
	}
}

// skipReason is what a skipped test printed, less go test's own lines:
// the message of t.Skip, with its file and line.
func skipReason(outputs []string) string {
	var lines []string
	for _, o := range outputs {
		o = strings.TrimSpace(o)
		if o == "" || strings.HasPrefix(o, "=== ") || strings.HasPrefix(o, "--- SKIP") {
			continue
		}
		lines = append(lines, o)
	}
	if len(lines) == 0 {
		return "(no reason given)"
	}
	return strings.Join(lines, " ")
}
