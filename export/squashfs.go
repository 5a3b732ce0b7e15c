package export

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"syscall"

	"github.com/storepack/storepack/export/squashfs"
	"github.com/storepack/storepack/export/tree"
	"github.com/storepack/storepack/format"
	"github.com/storepack/storepack/internal/shell"
	"github.com/storepack/storepack/plan"
	"github.com/storepack/storepack/store"
)

// squashfsDef declares the format: a squashfs 4.0 image of each system's tree, laid out for Apptainer and Singularity.
var squashfsDef = format.Def{Name: "squashfs", Kind: format.Tree, Ext: ".squashfs", PerSystem: true,
	Compressions: []format.Compression{format.Gzip, format.Zstd, format.XZ}, CompressionOf: "a squashfs image",
	Attrs: slices.Concat(format.RunAttrs, format.TreeAttrs, format.DatabaseAttrs, format.RelocatableAttrs), Blocks: format.ContentBlocks, BinLink: true}

// squashfsWriter writes squashfs exports: one squashfs image of each
// system's tree (package squashfs), laid out for Apptainer and
// Singularity by the plan (its runscript, environment and mount points).
// The entries come from the tree's own tar, read back as it streams.
type squashfsWriter struct{ treeWriter }

// Def declares the format.
func (squashfsWriter) Def() *format.Def { return &squashfsDef }

func (squashfsWriter) write(j job) (written, error) {
	outDir := j.outDir
	return writeTrees(j, func(sys *plan.System, t *plan.TreeOutput, src tree.Source) (File, error) {
		return writeAtomicAt(outDir, sys.Output, func(out *os.File) error { return squashfs.WriteTree(out, t, src) })
	})
}

// PlanTree adds the runtime's files and mount points to each system's
// tree: a squashfs image runs its program under Apptainer and Singularity.
func (squashfsWriter) PlanTree(_ *plan.TreeOutput, s *plan.Settings) ([]plan.Entry, error) {
	return runtimeEntries(s)
}

// The runtime's files in trees that run a program (squashfs), where
// Apptainer and Singularity look for them.
const (
	runscriptPath   = "/.singularity.d/runscript"
	environmentPath = "/.singularity.d/env/90-environment.sh"
)

// mountPoints are the folders a container runtime mounts over or fills
// (Apptainer's action scripts and libraries).
var mountPoints = []plan.Entry{
	{Path: "/.singularity.d/actions", Type: plan.EntryDirectory, Mode: 0o755},
	{Path: "/.singularity.d/libs", Type: plan.EntryDirectory, Mode: 0o755},
	{Path: "/dev", Type: plan.EntryDirectory, Mode: 0o755},
	{Path: "/etc", Type: plan.EntryDirectory, Mode: 0o755},
	{Path: "/home", Type: plan.EntryDirectory, Mode: 0o755},
	{Path: "/proc", Type: plan.EntryDirectory, Mode: 0o755},
	{Path: "/sys", Type: plan.EntryDirectory, Mode: 0o755},
	{Path: "/tmp", Type: plan.EntryDirectory, Mode: 0o1777},
}

// runtimeEntries are what Apptainer and Singularity need in a tree that
// runs a program: the mount points, /.singularity.d/env/90-environment.sh
// sourcing the profile's etc/profile (with a profile) and exporting the
// spec's env, and /.singularity.d/runscript, which execs the
// entry point and cmd with the arguments it is given (none when both are
// empty). The scripts run with the closure's first bin/sh, by path, when
// it has one, so that they also run under a plain chroot; else /bin/sh.
func runtimeEntries(s *plan.Settings) ([]plan.Entry, error) {
	entrypoint, cmd := s.Entrypoint, s.Cmd
	sh, err := closureShell(s.Items)
	if err != nil {
		return nil, err
	}
	out := slices.Clone(mountPoints)
	var env strings.Builder
	fmt.Fprintf(&env, "#!%s\n", sh)
	if s.Profile != "" {
		fmt.Fprintf(&env, ". %s/etc/profile\n", s.Profile)
	}
	keys := make([]string, 0, len(s.Env))
	for k := range s.Env {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !shell.Name(k) {
			return nil, fmt.Errorf("env %q: not a name a shell can export", k)
		}
		fmt.Fprintf(&env, "export %s=%s\n", k, shell.Quote(s.Env[k]))
	}
	out = append(out, plan.Entry{Path: environmentPath, Type: plan.EntryFile, Mode: 0o755, Content: env.String()})
	if args := append(slices.Clone(entrypoint), cmd...); len(args) > 0 {
		var run strings.Builder
		fmt.Fprintf(&run, "#!%s\n", sh)
		if len(keys) > 0 || s.Profile != "" {
			fmt.Fprintf(&run, ". %s\n", environmentPath)
		}
		run.WriteString("exec")
		for _, a := range args {
			run.WriteString(" " + shell.Quote(a))
		}
		run.WriteString(" \"$@\"\n")
		out = append(out, plan.Entry{Path: runscriptPath, Type: plan.EntryFile, Mode: 0o755, Content: run.String()})
	}
	return out, nil
}

// closureShell is the first item's bin/sh, by path, among items, or
// /bin/sh when none has one.
func closureShell(items map[store.Path]*plan.Item) (string, error) {
	paths := make([]store.Path, 0, len(items))
	for p := range items {
		paths = append(paths, p)
	}
	for _, p := range store.SortPaths(paths) {
		fi, err := os.Stat(items[p].FSPath + "/bin/sh")
		switch {
		case err == nil && fi.Mode().IsRegular():
			return string(p) + "/bin/sh", nil
		case err != nil && !errors.Is(err, os.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR):
			return "", fmt.Errorf("%s: %w", p, err)
		}
	}
	return "/bin/sh", nil
}
