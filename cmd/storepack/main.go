// Command storepack turns declarative HCL specs into reproducible archives
// of store closures, and reads Guix and Nix stores to write what Nix's own
// tools write, byte for byte, without writing to the store:
//
//	storepack dump PATH                  the NAR of PATH, as nix-store --dump
//	storepack hash [--base32] PATH...    the sha256 of each, as nix-hash --type sha256 [--base32]
//	storepack closure PATH...            the closure of store paths, dependencies first, as nix-store -qR
//	storepack bundle PATH...             the export bundle of the closure, as nix-store --export $(nix-store -qR PATH...)
//	storepack add [--name NAME] FILE     the store path nix-store --add FILE would give (nothing is written)
//	storepack restore DIR                a NAR from stdin into DIR, which must not exist
//	storepack export [EXPORT...]         writes the spec's exports into the output folder
//	storepack plan [EXPORT...]           prints the evaluated plan as JSON (--summary: for people; --since LOCK: new layers); writes nothing
//	storepack why EXPORT PATH            the chain of references pulling PATH into EXPORT's closure
//	storepack diff OLD NEW               the image layers NEW has that OLD lacks (plans, locks, layouts, archives)
//	storepack lock                       records the digests of every output in storepack.lock
//	storepack verify [EXPORT...]         rebuilds and fails, with a diff, on a difference from storepack.lock
//	storepack push [EXPORT...]           uploads images to their push registry reference
//	storepack validate                   checks the spec, printing every problem with file:line:column
//	storepack fmt [-check] [FILE...]     formats the spec's files
//	storepack keygen NAME [SECRET PUBLIC] makes a binary cache key pair, as nix-store --generate-binary-cache-key
//	storepack keygen --pem NAME           makes an ed25519 PEM pair NAME.key and NAME.pub (sign_key, cosign)
//	storepack verify-cache DIR --key K   checks a binary cache's narinfos, signatures and NARs
//
// dump, hash and add take any path; closure and bundle take store paths.
// Verbs that read a store take --store DIR (default: $NIX_STORE_DIR, else
// /gnu/store when it exists, else /nix/store) and --db auto|none|PATH
// (auto: the store's database when found, else scanning; none: find
// references by scanning store items as Nix does; a path: that database);
// add takes --store. Verbs that read a spec take -C DIR (run as if started
// in DIR, as git -C) and --var name=value; export also --out DIR, -q,
// --check and --no-cache. Flags may come before or after the operands;
// "--" ends them. "storepack help VERB" describes a verb and its flags.
//
// Exit status: 0 on success; 1 on failure, with one line
// "storepack: <path>: <what is wrong>" on stderr; 2 for a usage error, with
// the usage on stderr.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"

	"github.com/storepack/storepack/internal/printable"
	"github.com/storepack/storepack/store/nar"
)

// A verb is one subcommand. setup registers the verb's flags on fs and
// returns the function that runs it with the operands left once flags are
// parsed.
type verb struct {
	name     string
	operands string // in the usage line, after the flags
	summary  string
	// min and max operands; max < 0 means any number.
	min, max int
	setup    func(fs *flag.FlagSet) func(e *env, args []string) error
}

// verbs lists every verb, in the order the usage shows them.
var verbs = []*verb{
	dumpVerb,
	hashVerb,
	closureVerb,
	bundleVerb,
	addVerb,
	restoreVerb,
	exportVerb,
	planVerb,
	whyVerb,
	diffVerb,
	lockVerb,
	verifyVerb,
	pushVerb,
	validateVerb,
	fmtVerb,
	keygenVerb,
	verifyCacheVerb,
}

// env is what a verb runs with.
type env struct {
	stdin  io.Reader
	stdout *bufio.Writer
	stderr io.Writer
	// ctx ends at SIGINT or SIGTERM, or after --timeout (setTimeout);
	// cancel ends it.
	ctx    context.Context
	cancel context.CancelCauseFunc
}

// stdoutBuffer is the size of the buffer in front of stdout: large enough
// that dump and bundle write in few system calls.
const stdoutBuffer = 1 << 20

// memoryLimit is the memory the Go heap and nar's read-ahead buffers
// (nar.BufferArena, outside the heap) are held near, unless GOMEMLIMIT
// sets the heap's limit: the garbage collector then runs as often as it
// must, so that exports of any size keep a small, flat footprint (their
// buffers are bounded; only how soon garbage is collected varies).
const memoryLimit = 40 << 20

func main() {
	if _, set := os.LookupEnv("GOMEMLIMIT"); !set {
		debug.SetMemoryLimit(memoryLimit - nar.BufferArena)
	}
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// usageError is a wrong invocation: exit status 2 and the usage.
type usageError struct {
	v   *verb // nil for the command as a whole
	msg string
}

func (e *usageError) Error() string { return e.msg }

// run runs the command line args and returns the exit status.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "storepack: no verb given")
		writeUsage(stderr)
		return 2
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		if len(args) > 1 {
			if v := findVerb(args[1]); v != nil {
				fs := flagSet(v)
				v.setup(fs)
				writeVerbUsage(stdout, v, fs)
				return 0
			}
		}
		writeUsage(stdout)
		return 0
	}
	v := findVerb(args[0])
	if v == nil {
		fmt.Fprintf(stderr, "storepack: unknown verb %q\n", args[0])
		writeUsage(stderr)
		return 2
	}
	fs := flagSet(v)
	do := v.setup(fs)
	operands, err := parseInterspersed(fs, args[1:])
	if errors.Is(err, flag.ErrHelp) {
		writeVerbUsage(stdout, v, fs)
		return 0
	}
	if err == nil {
		switch {
		case len(operands) < v.min:
			err = &usageError{v, fmt.Sprintf("%s: missing operand", v.name)}
		case v.max >= 0 && len(operands) > v.max:
			err = &usageError{v, fmt.Sprintf("%s: unexpected operand %q", v.name, operands[v.max])}
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "storepack: %s\n", oneLine(err.Error()))
		writeVerbUsage(stderr, v, fs)
		return 2
	}
	return runInterruptible(context.Background(), stderr, func(ctx context.Context, cancel context.CancelCauseFunc) int {
		return runVerb(v, fs, do, operands, &env{stdin: stdin, stdout: bufio.NewWriterSize(stdout, stdoutBuffer), stderr: stderr, ctx: ctx, cancel: cancel})
	})
}

// runVerb runs the verb v, its flags parsed into fs, and returns the exit
// status.
func runVerb(v *verb, fs *flag.FlagSet, do func(*env, []string) error, operands []string, e *env) int {
	err := do(e, operands)
	out, stderr := e.stdout, e.stderr
	if ferr := out.Flush(); err == nil && ferr != nil {
		err = fmt.Errorf("stdout: %w", ferr)
	}
	if err != nil {
		var ue *usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(stderr, "storepack: %s\n", oneLine(ue.msg))
			writeVerbUsage(stderr, v, fs)
			return 2
		}
		fmt.Fprintf(stderr, "storepack: %s\n", oneLine(err.Error()))
		if code := interruptedCode(e.ctx); code != 0 {
			return code
		}
		return 1
	}
	return 0
}

func findVerb(name string) *verb {
	for _, v := range verbs {
		if v.name == name {
			return v
		}
	}
	return nil
}

func flagSet(v *verb) *flag.FlagSet {
	fs := flag.NewFlagSet(v.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // run prints errors and usage itself
	return fs
}

// parseInterspersed parses flags wherever they are among the operands, as
// flag.Parse does only before them. Everything after "--" is an operand.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var operands []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, &usageError{msg: fmt.Sprintf("%s: %v", fs.Name(), err)}
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return operands, nil
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(operands, rest...), nil
		}
		operands = append(operands, rest[0])
		args = rest[1:]
	}
}

// oneLine keeps an error message on one line, with the control
// characters of names from outside escaped (printable.String): what the
// command prints of an error.
func oneLine(s string) string {
	return printable.String(strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " "))
}

// pathError makes err read "<path>: <what is wrong>": unchanged when its
// message starts with path or a path below it; "<path>: <what>: <rest>"
// when the message is "<what> <path>: <rest>" (as in "lstat /x: ..."); else
// prefixed with path.
func pathError(path string, err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if strings.HasPrefix(msg, path+":") || strings.HasPrefix(msg, strings.TrimSuffix(path, "/")+"/") {
		return err
	}
	if i := strings.Index(msg, " "+path+": "); i >= 0 {
		return &rewordedError{path + ": " + msg[:i] + ": " + msg[i+len(path)+3:], err}
	}
	return &rewordedError{path + ": " + msg, err}
}

// rewordedError is an error with its message put in the command's form.
type rewordedError struct {
	msg string
	err error
}

func (e *rewordedError) Error() string { return e.msg }
func (e *rewordedError) Unwrap() error { return e.err }

func writeUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: storepack VERB [flags] OPERANDS...")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "verbs:")
	width := 0
	for _, v := range verbs {
		width = max(width, len(v.name))
	}
	for _, v := range verbs {
		fmt.Fprintf(w, "  %-*s  %s\n", width, v.name, v.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, `"storepack help VERB" or "storepack VERB --help" describes a verb and its flags.`)
}

func writeVerbUsage(w io.Writer, v *verb, fs *flag.FlagSet) {
	fmt.Fprintf(w, "usage: storepack %s %s\n\n%s\n", v.name, v.operands, v.summary)
	first := true
	fs.VisitAll(func(f *flag.Flag) {
		if first {
			fmt.Fprintln(w, "\nflags:")
			first = false
		}
		name, usage := flag.UnquoteUsage(f)
		if name != "" {
			name = " " + name
		}
		fmt.Fprintf(w, "  --%s%s\n    \t%s", f.Name, name, usage)
		if f.DefValue != "" && f.DefValue != "false" {
			fmt.Fprintf(w, " (default %s)", f.DefValue)
		}
		fmt.Fprintln(w)
	})
}
