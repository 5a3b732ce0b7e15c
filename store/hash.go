package store

import (
	"encoding/hex"
	"fmt"
	"strings"
)

// Hash is the SHA-256 digest of a NAR serialisation, as Nix records an
// item's NAR hash. It is written "sha256:<Nix base32>", the form of
// narinfo files, signatures' fingerprints and storepack's plans.
type Hash [32]byte

// String gives h as "sha256:<Nix base32>".
func (h Hash) String() string { return "sha256:" + Encode32(h[:]) }

// Hex gives h in lower-case hexadecimal, without a prefix.
func (h Hash) Hex() string { return hex.EncodeToString(h[:]) }

// MarshalText gives h as String does.
func (h Hash) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText reads a hash as ParseHash does.
func (h *Hash) UnmarshalText(b []byte) error {
	v, err := ParseHash(string(b))
	if err != nil {
		return err
	}
	*h = v
	return nil
}

// ParseHash reads a hash as String writes it: "sha256:" and 52 Nix base32
// digits, the only form narinfo files and plans hold.
func ParseHash(s string) (Hash, error) { return parseHash(s, false) }

// ParseHexHash reads "sha256:" and 64 hexadecimal digits: the form of
// Nix's and Guix's databases, and of a source's nar_hash in a spec.
func ParseHexHash(s string) (Hash, error) { return parseHash(s, true) }

func parseHash(s string, hexDigits bool) (Hash, error) {
	var h Hash
	digits, ok := strings.CutPrefix(s, "sha256:")
	if !ok {
		return h, fmt.Errorf("hash %q does not start with sha256:", s)
	}
	var b []byte
	var err error
	switch {
	case hexDigits && len(digits) == hex.EncodedLen(len(h)):
		b, err = hex.DecodeString(digits)
	case hexDigits:
		return h, fmt.Errorf("hash %q is not sha256:<%d hexadecimal digits>", s, hex.EncodedLen(len(h)))
	case len(digits) == EncodedLen32(len(h)):
		b, err = Decode32(digits)
	default:
		return h, fmt.Errorf("hash %q is not sha256:<%d Nix base32 digits>", s, EncodedLen32(len(h)))
	}
	if err != nil {
		return h, fmt.Errorf("hash %q: %w", s, err)
	}
	copy(h[:], b)
	return h, nil
}
