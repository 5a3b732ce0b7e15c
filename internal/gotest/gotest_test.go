package gotest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// sample is a package whose tests pass, fail and skip, with subtests.
const sample = `package sample

import "testing"

func TestPass(t *testing.T) {}

func TestFail(t *testing.T) { t.Error("the failure's message") }

func TestSkip(t *testing.T) { t.Skip("tool X is not installed") }

func TestSub(t *testing.T) {
	t.Run("a", func(t *testing.T) {})
	t.Run("b", func(t *testing.T) { t.Skipf("needs %s", "root") })
}
`

// TestReport runs the real go test -json on the sample package and reads
// its events.
func TestReport(t *testing.T) {
	dir := t.TempDir()
	for name, data := range map[string]string{
		"go.mod":         "module example.org/sample\n\ngo 1.22\n",
		"sample_test.go": sample,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("go", "test", "-json", "-count=1", ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=", "GOWORK=off")
	events, err := cmd.Output()
	if _, ok := err.(*exec.ExitError); !ok && err != nil {
		t.Fatalf("go test -json: %v", err)
	}
	var out bytes.Buffer
	sum, err := Report(bytes.NewReader(events), &out)
	if err != nil {
		t.Fatal(err)
	}
	text := out.String()
	t.Logf("report:\n%s", text)
	// TestPass, TestSub and TestSub/a pass; TestFail fails; TestSkip
	// and TestSub/b are skipped.
	if sum.Passed != 3 || sum.Failed != 1 || len(sum.Skipped) != 2 {
		t.Errorf("summary %+v, want 3 passed, 1 failed, 2 skipped", sum)
	}
	want := []Skip{
		{"example.org/sample", "TestSkip", "sample_test.go:9: tool X is not installed"},
		{"example.org/sample", "TestSub/b", "sample_test.go:13: needs root"},
	}
	for i, s := range want {
		if i >= len(sum.Skipped) || sum.Skipped[i] != s {
			t.Errorf("skipped[%d] = %+v, want %+v", i, sum.Skipped, s)
		}
	}
	for _, w := range []string{
		"--- FAIL: TestFail (",
		"s)\n    sample_test.go:7: the failure's message\n",
		"FAIL\texample.org/sample",
		"2 skipped:\n  example.org/sample TestSkip: sample_test.go:9: tool X is not installed\n",
		"\ntests: 3 passed, 1 failed, 2 skipped\n",
	} {
		if !strings.Contains(text, w) {
			t.Errorf("the report lacks %q", w)
		}
	}
	for _, bad := range []string{"=== RUN", "--- PASS", "the failure's message\n--- FAIL"} {
		if strings.Contains(text, bad) {
			t.Errorf("the report holds %q, which plain go test does not print", bad)
		}
	}
}

// TestReportPassesOtherLines copies lines that are not events.
func TestReportPassesOtherLines(t *testing.T) {
	var out bytes.Buffer
	if _, err := Report(strings.NewReader("# a build error\n{\"Action\":\"output\",\"Package\":\"p\",\"Output\":\"ok  \\tp\\t0.1s\\n\"}\n"), &out); err != nil {
		t.Fatal(err)
	}
	if want := "# a build error\nok  \tp\t0.1s\n\ntests: 0 passed, 0 failed, 0 skipped\n"; out.String() != want {
		t.Errorf("report %q, want %q", out.String(), want)
	}
}
