// Package signing reads, writes and uses storepack's signing keys: the
// ed25519 keys of Nix binary caches ("<name>:<base64>", as
// `nix-store --generate-binary-cache-key` writes them), and their
// signatures ("<key name>:<base64>", a narinfo's Sig).
package signing

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/storepack/storepack/internal/atomicfile"
)

// signatureSize is the size of an ed25519 signature.
const signatureSize = ed25519.SignatureSize

// ParseSignature splits a signature "<key name>:<base64 of 64 bytes>".
func ParseSignature(s string) (name string, sig []byte, err error) {
	name, b64, ok := strings.Cut(s, ":")
	if !ok || name == "" || !Printable(s) {
		return "", nil, fmt.Errorf("signature %q is not <key name>:<base64>", s)
	}
	sig, err = base64.StdEncoding.Strict().DecodeString(b64)
	if err != nil || len(sig) != signatureSize {
		return "", nil, fmt.Errorf("signature %q is not <key name>:<base64 of %d bytes>", s, signatureSize)
	}
	return name, sig, nil
}

// Printable reports whether s is non-empty printable ASCII without spaces:
// what a key name and a signature are, and the fields of a narinfo.
func Printable(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// SecretKey is a signing key: its name (e.g. cache.example.org-1) and the
// 64-byte ed25519 secret key (seed, then public key), as libsodium and Nix
// hold it.
type SecretKey struct {
	Name string
	Key  ed25519.PrivateKey
}

// PublicKey is a key that checks signatures: its name and the 32-byte
// ed25519 public key.
type PublicKey struct {
	Name string
	Key  ed25519.PublicKey
}

// String gives k as Nix writes a secret key file: "<name>:<base64>".
func (k SecretKey) String() string { return k.Name + ":" + base64.StdEncoding.EncodeToString(k.Key) }

// String gives k as Nix writes a public key file and takes
// trusted-public-keys: "<name>:<base64>".
func (k PublicKey) String() string { return k.Name + ":" + base64.StdEncoding.EncodeToString(k.Key) }

// Public is the public key of k, with the same name.
func (k SecretKey) Public() PublicKey {
	return PublicKey{Name: k.Name, Key: k.Key.Public().(ed25519.PublicKey)}
}

// Sign signs fingerprint (binarycache.Fingerprint) and returns the signature as a
// narinfo's Sig holds it: "<key name>:<base64>".
func (k SecretKey) Sign(fingerprint string) string {
	return k.Name + ":" + base64.StdEncoding.EncodeToString(ed25519.Sign(k.Key, []byte(fingerprint)))
}

// Verify reports whether sig, "<key name>:<base64>", is k's valid
// signature of fingerprint. A signature by a key of another name is not.
func (k PublicKey) Verify(fingerprint, sig string) bool {
	name, raw, err := ParseSignature(sig)
	return err == nil && name == k.Name && ed25519.Verify(k.Key, []byte(fingerprint), raw)
}

// checkKeyName checks a key's name: non-empty, printable, no ':' or white
// space (Nix splits "<name>:<key>" at the first colon).
func checkKeyName(name string) error {
	if name == "" {
		return errors.New("the key name is empty")
	}
	if !Printable(name) || strings.Contains(name, ":") {
		return fmt.Errorf("the key name %q holds a ':', white space or a control character", name)
	}
	return nil
}

// splitKey splits "<name>:<base64>" into the name and the decoded bytes.
// Surrounding white space (a final newline added by an editor) is
// ignored.
func splitKey(s, what string) (string, []byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", nil, fmt.Errorf("empty %s", what)
	}
	name, b64, ok := strings.Cut(s, ":")
	if !ok {
		return "", nil, fmt.Errorf("not a %s: no ':' between the key name and the base64 key", what)
	}
	if err := checkKeyName(name); err != nil {
		return "", nil, fmt.Errorf("not a %s: %w", what, err)
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(b64)
	if err != nil {
		return "", nil, fmt.Errorf("%s %q: the key is not valid base64: %w", what, name, err)
	}
	return name, raw, nil
}

// ParseSecretKey reads a secret key as `nix-store
// --generate-binary-cache-key` writes it: "<name>:<base64 of 64 bytes>".
// A public key given by mistake is named as such.
func ParseSecretKey(s string) (SecretKey, error) {
	name, raw, err := splitKey(s, "secret key")
	if err != nil {
		return SecretKey{}, err
	}
	switch {
	case len(raw) == ed25519.PublicKeySize:
		return SecretKey{}, fmt.Errorf("%q is a public key (32 bytes), not a secret key: sign with the secret key file", name)
	case len(raw) != ed25519.PrivateKeySize:
		return SecretKey{}, fmt.Errorf("secret key %q has %d bytes, not %d", name, len(raw), ed25519.PrivateKeySize)
	}
	k := ed25519.PrivateKey(raw)
	if !bytes.Equal(ed25519.NewKeyFromSeed(k.Seed()), k) {
		return SecretKey{}, fmt.Errorf("secret key %q is corrupt: its public half does not match its seed", name)
	}
	return SecretKey{Name: name, Key: k}, nil
}

// ParsePublicKey reads a public key as Nix writes it and takes it in
// trusted-public-keys: "<name>:<base64 of 32 bytes>".
func ParsePublicKey(s string) (PublicKey, error) {
	name, raw, err := splitKey(s, "public key")
	if err != nil {
		return PublicKey{}, err
	}
	switch {
	case len(raw) == ed25519.PrivateKeySize:
		return PublicKey{}, fmt.Errorf("%q is a secret key (64 bytes), not a public key: never hand out the secret key; use its public key", name)
	case len(raw) != ed25519.PublicKeySize:
		return PublicKey{}, fmt.Errorf("public key %q has %d bytes, not %d", name, len(raw), ed25519.PublicKeySize)
	}
	return PublicKey{Name: name, Key: ed25519.PublicKey(raw)}, nil
}

// ReadSecretKey reads a secret key file. Errors name the file.
func ReadSecretKey(file string) (SecretKey, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return SecretKey{}, fmt.Errorf("signing key: %w", err)
	}
	k, err := ParseSecretKey(string(b))
	if err != nil {
		return SecretKey{}, fmt.Errorf("signing key %s: %w", file, err)
	}
	return k, nil
}

// ReadPublicKey reads a public key file. Errors name the file.
func ReadPublicKey(file string) (PublicKey, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return PublicKey{}, fmt.Errorf("public key: %w", err)
	}
	k, err := ParsePublicKey(string(b))
	if err != nil {
		return PublicKey{}, fmt.Errorf("public key %s: %w", file, err)
	}
	return k, nil
}

// LoadPublicKey takes a public key as a command line gives it: the key
// itself ("<name>:<base64>", as in trusted-public-keys) or, when arg is
// not one, the name of a file holding it.
func LoadPublicKey(arg string) (PublicKey, error) {
	if k, err := ParsePublicKey(arg); err == nil {
		return k, nil
	} else if _, statErr := os.Stat(arg); statErr != nil {
		return PublicKey{}, fmt.Errorf("%q is neither a public key (<name>:<base64>: %v) nor a file", arg, err)
	}
	return ReadPublicKey(arg)
}

// GenerateKey makes a new key pair named name.
func GenerateKey(name string) (SecretKey, error) {
	if err := checkKeyName(name); err != nil {
		return SecretKey{}, err
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return SecretKey{}, err
	}
	return SecretKey{Name: name, Key: priv}, nil
}

// Keygen makes a new key pair named name and returns both keys as
// `nix-store --generate-binary-cache-key` writes them in its two files.
func Keygen(name string) (secret, public string, err error) {
	k, err := GenerateKey(name)
	if err != nil {
		return "", "", err
	}
	return k.String(), k.Public().String(), nil
}

// WriteKeyFiles makes a new key pair named name and writes it as
// `nix-store --generate-binary-cache-key NAME SECRET PUBLIC` does: the
// secret key readable by its owner only (0600), the public key 0644, no
// final newline. It refuses to overwrite an existing file.
func WriteKeyFiles(name, secretFile, publicFile string) error {
	if filepath.Clean(secretFile) == filepath.Clean(publicFile) {
		return fmt.Errorf("the secret and public key files are both %s", secretFile)
	}
	secret, public, err := Keygen(name)
	if err != nil {
		return err
	}
	if err := writeNew(secretFile, secret, 0o600); err != nil {
		return fmt.Errorf("secret key: %w", err)
	}
	if err := writeNew(publicFile, public, 0o644); err != nil {
		os.Remove(secretFile)
		return fmt.Errorf("public key: %w", err)
	}
	return nil
}

// writeNew writes a file that must not exist yet, with mode perm: never
// in part (see atomicfile.CommitNew).
func writeNew(file, content string, perm os.FileMode) error {
	f, err := atomicfile.Create(file, perm)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(content); err != nil {
		f.Abort()
		return err
	}
	created, err := f.CommitNew()
	if err == nil && !created {
		err = &os.PathError{Op: "create", Path: file, Err: os.ErrExist}
	}
	return err
}
