// Package reference is the one home of the image reference grammar that
// storepack accepts for tags and pushes: spec checks references with it,
// the image writers split them into name and tag with it.
package reference

import (
	"fmt"
	"regexp"
	"strings"
	"sync"
)

// Reference grammar of image names and tags, as the distribution project
// defines it. The expressions are compiled at their first use: compiled
// when the program starts they cost every command 2 ms, most of which
// never parse a reference.
var (
	refPathComponent = lazyRegexp(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$`)
	refDomain        = lazyRegexp(`^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*(?::[0-9]+)?$`)
	refTag           = lazyRegexp(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
)

// lazyRegexp returns a function that compiles expr the first time it is
// called.
func lazyRegexp(expr string) func() *regexp.Regexp {
	return sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(expr) })
}

// Parse checks an image reference "[host[:port]/]name[:tag]"
// against the reference grammar of the distribution project, which docker
// and podman load archives with: lower-case name components separated by
// '/', an optional registry host first, and a tag of 1 to 128 of
// [A-Za-z0-9_.-] not starting with '.' or '-'. Digests are not accepted.
// It returns the name and the tag ("latest" when there is none).
//
// This is the one home of the grammar: go-containerregistry's name
// package, which pushes use to address a registry, accepts more than these
// loaders do (a tag starting with '-', empty name components).
func Parse(ref string) (name, tag string, err error) {
	if strings.Contains(ref, "@") {
		return "", "", fmt.Errorf("%q names a digest; digests are not tags: give a tag instead", ref)
	}
	name, tag = ref, "latest"
	if i := strings.LastIndexByte(ref, ':'); i > strings.LastIndexByte(ref, '/') {
		name, tag = ref[:i], ref[i+1:]
		if !refTag().MatchString(tag) {
			return "", "", fmt.Errorf("in %q, the tag %q is not 1 to 128 of the characters A-Z a-z 0-9 _ . - starting with a letter, digit or _", ref, tag)
		}
	}
	if name == "" || len(name) > 255 {
		return "", "", fmt.Errorf("in %q, the name must have 1 to 255 characters", ref)
	}
	parts := strings.Split(name, "/")
	for i, p := range parts {
		if i == 0 && len(parts) > 1 && (strings.ContainsAny(p, ".:") || p == "localhost") {
			if !refDomain().MatchString(p) {
				return "", "", fmt.Errorf("in %q, %q is not a registry host[:port]", ref, p)
			}
			continue
		}
		if !refPathComponent().MatchString(p) {
			return "", "", fmt.Errorf("in %q, the name component %q is not lower-case letters and digits separated by '.', '_', '__' or dashes", ref, p)
		}
	}
	return name, tag, nil
}

// Repository is ref without its tag or digest: the repository it names.
func Repository(ref string) string {
	name, _, _ := strings.Cut(ref, "@")
	if i := strings.LastIndexByte(name, ':'); i > strings.LastIndexByte(name, '/') {
		name = name[:i]
	}
	return name
}

// Normalize is ref in full, as containerd and docker name images: with
// the registry host, docker.io when ref names none, and the "library/"
// namespace for docker.io's one-component names, and the tag ("latest"
// when ref has none). "hello:1" is "docker.io/library/hello:1",
// "localhost/hello" is "localhost/hello:latest". ref must pass Parse.
func Normalize(ref string) (string, error) {
	name, tag, err := Parse(ref)
	if err != nil {
		return "", err
	}
	host, rest, ok := strings.Cut(name, "/")
	if !ok || !(strings.ContainsAny(host, ".:") || host == "localhost") {
		host, rest = "docker.io", name
	}
	if host == "docker.io" && !strings.Contains(rest, "/") {
		rest = "library/" + rest
	}
	return host + "/" + rest + ":" + tag, nil
}
