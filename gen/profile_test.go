package gen

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/storepack/storepack/store"
	"github.com/storepack/storepack/store/profile"
)

// TestMain writes profiles into a temporary folder, not the user's
// cache.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "storepack-gen-profiles-")
	if err != nil {
		panic(err)
	}
	ProfileDir = func() (string, error) { return dir, nil }
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// TestProfilePlan: with a profile, the closure ends with it, relative
// targets and entry points are inside it, the image's Env has its search
// paths (the spec's env beside them), and a tree with a database links
// /bin and Guix's default profile to it.
func TestProfilePlan(t *testing.T) {
	p, err := Generate(context.Background(), loadSpec(t, "testdata/specs/profile", nil))
	if err != nil {
		t.Fatal(err)
	}
	img := p.Exports[0].Systems[0]
	last := img.Closure[len(img.Closure)-1]
	if last.Path != img.Profile || last.Path.Name() != profile.Name || !slices.Contains(last.References, last.Path) {
		t.Fatalf("the closure ends with %+v, the profile is %s", last, img.Profile)
	}
	prof := string(img.Profile)
	cfg := img.Image.Config
	if want := []string{prof + "/bin/hello"}; !slices.Equal(cfg.Entrypoint, want) {
		t.Errorf("entrypoint %v, want %v", cfg.Entrypoint, want)
	}
	if cfg.Env["PATH"] != prof+"/bin" || cfg.Env["LANG"] != "C.UTF-8" || cfg.Env["XDG_DATA_DIRS"] != prof+"/share" {
		t.Errorf("env %v", cfg.Env)
	}
	found := false
	for _, l := range img.Image.Layers {
		for _, en := range l.Tree.Entries {
			if en.Path == "/opt/gnu/bin" {
				found = en.Target == prof+"/bin"
			}
		}
	}
	if !found {
		t.Errorf("no /opt/gnu/bin link to %s/bin", prof)
	}
	// share/zoneinfo: greeting links to tzdata's folder, tzdata has it:
	// one real folder, its files the first path's (the same files).
	fi, err := os.Lstat(last.FSPath + "/share/zoneinfo")
	if err != nil || !fi.IsDir() {
		t.Errorf("share/zoneinfo in the profile: %v, %v; want a real folder", fi, err)
	}

	tb := p.Exports[1].Systems[0]
	links := map[string]string{}
	for _, en := range tb.Tree.Entries {
		if en.Target != "" {
			links[en.Path] = en.Target
		}
	}
	if links["/bin"] != string(tb.Profile)+"/bin" || links["/var/guix/profiles/per-user/root/guix-profile"] != string(tb.Profile) {
		t.Errorf("tarball links %v, want /bin and the Guix profile to %s", links, tb.Profile)
	}
}

// TestProfileCollision: two paths providing different files is an error
// naming both; the same path twice is none.
func TestProfileCollision(t *testing.T) {
	hello := store.Path("/gnu/store/qvzbpnllxraamdsh8qmz8rsp7xrsnj9q-hello-2.12")
	root := t.TempDir()
	other := store.Path("/gnu/store/0000000000000000000000000000000a-other-hello")
	for _, f := range []string{"gnu/store/" + hello.Base() + "/bin/hello", "gnu/store/" + other.Base() + "/bin/hello"} {
		if err := os.MkdirAll(root+"/"+f[:strings.LastIndex(f, "/")], 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(root+"/"+f, []byte(f), 0o555); err != nil {
			t.Fatal(err)
		}
	}
	sp := loadSpec(t, "testdata/specs/profile", nil)
	sp.Store.Root = root
	sp.Exports = sp.Exports[1:]
	e := &sp.Exports[0]
	e.Systems[0].Paths = []store.Path{hello, hello}
	if _, err := Generate(context.Background(), sp); err != nil {
		t.Errorf("the same path twice: %v", err)
	}
	e.Systems[0].Paths = []store.Path{hello, other}
	_, err := Generate(context.Background(), sp)
	if err == nil || !strings.Contains(err.Error(), string(hello)) || !strings.Contains(err.Error(), string(other)) || !strings.Contains(err.Error(), "bin/hello") {
		t.Errorf("a collision: %v, want an error naming both paths and bin/hello", err)
	}
	e.Profile.AllowCollisions = true
	if _, err := Generate(context.Background(), sp); err != nil {
		t.Errorf("a collision allowed: %v", err)
	}
}
