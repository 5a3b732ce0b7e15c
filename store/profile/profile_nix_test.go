package profile

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/storepack/storepack/internal/oracle"
	"github.com/storepack/storepack/store"
	"github.com/storepack/storepack/store/nar"
)

// TestProfileNix checks a profile against Nix: inputs added to the real
// Nix store with nix-store --add; the profile, imported under another
// hash part, made content-addressed by `nix store make-content-addressed`
// gets the profile's path and bytes (nix-store --verify-path); and
// `nix-env -p DIR -i` (Nix's buildEnv) makes the same links.
func TestProfileNix(t *testing.T) {
	nixStore := oracle.Require(t, "nix-store")
	nix := oracle.Require(t, "nix")
	nixEnv := oracle.Require(t, "nix-env")
	oracle.RequireRoot(t)
	src := t.TempDir()
	dirs := map[string]map[string]string{
		"sp-profile-test-a": {"bin/a": "#!/bin/sh\necho a\n", "share/man/man1/a.1": "a", "share/info/a.info": "a"},
		"sp-profile-test-b": {"bin/b": "#!/bin/sh\necho b\n", "share/doc/b": "b", "lib/pkgconfig/b.pc": "b"},
	}
	var inputs []Input
	for _, name := range []string{"sp-profile-test-a", "sp-profile-test-b"} {
		d := filepath.Join(src, name)
		for p, c := range dirs[name] {
			must(t, os.MkdirAll(filepath.Join(d, filepath.Dir(p)), 0o755))
			must(t, os.WriteFile(filepath.Join(d, p), []byte(c), 0o755))
		}
		added := strings.TrimSpace(string(oracle.Output(t, oracle.Nix(t, nil, nixStore, "--add", d))))
		inputs = append(inputs, Input{Path: store.Path(added), FSPath: added})
	}
	p, err := Build("/nix/store", inputs, t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}

	// Import it under another hash part (as a profile built elsewhere
	// would be), then let Nix make that content-addressed: it must give
	// the profile's path. (Nix 2.8's make-content-addressed cannot map a
	// self-referring path to itself: it loops.)
	other := store.Dir("/nix/store").Join("0000000000000000000000000000000a-profile")
	copyDir := filepath.Join(t.TempDir(), "p")
	must(t, os.CopyFS(copyDir, os.DirFS(p.FSPath)))
	etcProfile := filepath.Join(copyDir, "etc", "profile")
	b, err := os.ReadFile(etcProfile)
	must(t, err)
	must(t, os.Chmod(etcProfile, 0o644))
	must(t, os.WriteFile(etcProfile, bytes.ReplaceAll(b, []byte(p.Path.HashPart()), []byte(other.HashPart())), 0o444))
	var bundle bytes.Buffer
	bw := nar.NewBundleWriter(&bundle)
	e := &nar.BundleEntry{Path: string(other)}
	for _, r := range p.References {
		if r == p.Path {
			r = other
		}
		e.References = append(e.References, string(r))
	}
	if _, err := bw.WriteNAR(e, copyDir, nil, nil); err != nil {
		t.Fatal(err)
	}
	must(t, bw.WriteTrailer(e))
	must(t, bw.Close())
	imp := oracle.Nix(t, nil, nixStore, "--import")
	imp.Stdin = &bundle
	if got := strings.TrimSpace(string(oracle.Output(t, imp))); got != string(other) {
		t.Fatalf("nix-store --import gave %q, want %s", got, other)
	}
	out := oracle.Output(t, oracle.Nix(t, nil, nix, "--extra-experimental-features", "nix-command", "store", "make-content-addressed", "--json", string(other)))
	var res struct{ Rewrites map[string]string }
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("make-content-addressed: %v\n%s", err, out)
	}
	if got := res.Rewrites[string(other)]; got != string(p.Path) {
		t.Errorf("nix store make-content-addressed gives %s, the profile is %s", got, p.Path)
	}
	oracle.Output(t, oracle.Nix(t, nil, nixStore, "--verify-path", string(p.Path)))
	if got, want := strings.TrimSpace(string(oracle.Output(t, oracle.Nix(t, nil, nixStore, "--query", "--hash", string(p.Path))))), store.Hash(p.NarHash).String(); got != want {
		t.Errorf("Nix's NAR hash of %s is %s, ours %s", p.Path, got, want)
	}

	// Nix's buildEnv of the same paths: the same links (its manifest.nix
	// and our etc/profile aside).
	env := filepath.Join(t.TempDir(), "env")
	args := []string{"-p", env, "-i"}
	for _, in := range inputs {
		args = append(args, string(in.Path))
	}
	oracle.Output(t, oracle.Nix(t, nil, nixEnv, args...))
	theirs := slices.DeleteFunc(listing(t, env+"/"), func(s string) bool { return strings.HasPrefix(s, "manifest.nix") })
	ours := slices.DeleteFunc(listing(t, p.FSPath), func(s string) bool { return strings.HasPrefix(s, "etc") })
	if !slices.Equal(theirs, ours) {
		t.Errorf("buildEnv made:\n%s\nthe profile has:\n%s", strings.Join(theirs, "\n"), strings.Join(ours, "\n"))
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
