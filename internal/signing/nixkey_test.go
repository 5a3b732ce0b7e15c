package signing

import (
	"crypto/ed25519"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestKeygenRoundTrip(t *testing.T) {
	secret, public, err := Keygen("cache.example.org-1")
	if err != nil {
		t.Fatal(err)
	}
	sk, err := ParseSecretKey(secret)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := ParsePublicKey(public)
	if err != nil {
		t.Fatal(err)
	}
	if sk.String() != secret || pk.String() != public {
		t.Errorf("keys written back differ: %q %q", sk, pk)
	}
	if sk.Name != "cache.example.org-1" || pk.Name != sk.Name {
		t.Errorf("names %q and %q, want cache.example.org-1", sk.Name, pk.Name)
	}
	if sk.Public().String() != public {
		t.Errorf("Public() = %s, want %s", sk.Public(), public)
	}
	// A narinfo's fingerprint, as binarycache.Fingerprint writes one.
	fp := "1;/nix/store/sz2s3swv2gdm7wr82ixmcyq98s8z6v13-hello-2.12;sha256:1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s;5678;/nix/store/sz2s3swv2gdm7wr82ixmcyq98s8z6v13-hello-2.12"
	sig := sk.Sign(fp)
	if !strings.HasPrefix(sig, "cache.example.org-1:") {
		t.Errorf("signature %q does not start with the key name", sig)
	}
	if !pk.Verify(fp, sig) {
		t.Errorf("Verify rejects the key's own signature")
	}
	if pk.Verify(fp+"x", sig) {
		t.Errorf("Verify accepts a signature of another fingerprint")
	}
	renamed := PublicKey{Name: "other-1", Key: pk.Key}
	if renamed.Verify(fp, sig) {
		t.Errorf("Verify accepts a signature made under another key name")
	}
	_, other, err := Keygen("cache.example.org-1")
	if err != nil {
		t.Fatal(err)
	}
	opk, _ := ParsePublicKey(other)
	if opk.Verify(fp, sig) {
		t.Errorf("another key of the same name verifies the signature")
	}
}

func TestKeygenNames(t *testing.T) {
	for _, name := range []string{"", "a:b", "a b", "a\nb"} {
		if _, _, err := Keygen(name); err == nil {
			t.Errorf("Keygen(%q) succeeded", name)
		}
	}
}

func TestParseKeyErrors(t *testing.T) {
	secret, public, err := Keygen("k-1")
	if err != nil {
		t.Fatal(err)
	}
	sk, _ := ParseSecretKey(secret)
	b64 := func(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
	// A secret key whose public half is not its seed's.
	mismatched := append(append([]byte{}, sk.Key.Seed()...), make([]byte, ed25519.PublicKeySize)...)
	tests := []struct {
		name, text string
		secret     bool
		want       string
	}{
		{"empty secret", "", true, "empty secret key"},
		{"no colon", "abc", true, "no ':' between the key name and the base64 key"},
		{"empty name", ":" + b64(sk.Key), true, "the key name is empty"},
		{"bad base64", "k-1:***", true, "not valid base64"},
		{"public given as secret", public, true, "is a public key (32 bytes), not a secret key"},
		{"short secret", "k-1:" + b64(make([]byte, 10)), true, "has 10 bytes, not 64"},
		{"corrupt secret", "k-1:" + b64(mismatched), true, "is corrupt: its public half does not match its seed"},
		{"secret given as public", secret, false, "is a secret key (64 bytes), not a public key"},
		{"short public", "k-1:" + b64(make([]byte, 31)), false, "has 31 bytes, not 32"},
		{"public no colon", "k-1", false, "no ':'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.secret {
				_, err = ParseSecretKey(tt.text)
			} else {
				_, err = ParsePublicKey(tt.text)
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
	if k, err := ParseSecretKey(secret + "\n"); err != nil || k.String() != secret {
		t.Errorf("a final newline: %v", err)
	}
}

func TestKeyFiles(t *testing.T) {
	dir := t.TempDir()
	sf, pf := filepath.Join(dir, "secret"), filepath.Join(dir, "public")
	if err := WriteKeyFiles("files-1", sf, pf); err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		file string
		mode os.FileMode
	}{{sf, 0o600}, {pf, 0o644}} {
		fi, err := os.Stat(f.file)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&^f.mode != 0 || (f.mode == 0o600 && fi.Mode().Perm() != 0o600) {
			t.Errorf("%s has mode %v, want %v", f.file, fi.Mode().Perm(), f.mode)
		}
		b, _ := os.ReadFile(f.file)
		if strings.HasSuffix(string(b), "\n") {
			t.Errorf("%s ends with a newline; nix-store --generate-binary-cache-key writes none", f.file)
		}
	}
	sk, err := ReadSecretKey(sf)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := ReadPublicKey(pf)
	if err != nil {
		t.Fatal(err)
	}
	if sk.Public().String() != pk.String() {
		t.Errorf("the public key file %s is not the secret key's public key %s", pk, sk.Public())
	}
	if err := WriteKeyFiles("files-1", sf, filepath.Join(dir, "p2")); err == nil {
		t.Errorf("WriteKeyFiles overwrote an existing secret key")
	}
	if _, err := ReadSecretKey(pf); err == nil || !strings.Contains(err.Error(), pf) || !strings.Contains(err.Error(), "is a public key") {
		t.Errorf("reading the public key as the secret one: %v, want an error naming %s", err, pf)
	}
	missing := filepath.Join(dir, "missing")
	if _, err := ReadSecretKey(missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing key file: %v, want an error naming it", err)
	}

	// LoadPublicKey takes the key or a file holding it.
	for _, arg := range []string{pk.String(), pf} {
		got, err := LoadPublicKey(arg)
		if err != nil || got.String() != pk.String() {
			t.Errorf("LoadPublicKey(%q) = %v, %v", arg, got, err)
		}
	}
	if _, err := LoadPublicKey(missing); err == nil || !strings.Contains(err.Error(), "neither a public key") {
		t.Errorf("LoadPublicKey of nothing: %v", err)
	}
}
