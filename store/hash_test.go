package store

import (
	"crypto/sha256"
	"encoding/json"
	"strings"
	"testing"
)

func TestHash(t *testing.T) {
	h := Hash(sha256.Sum256([]byte("nar")))
	s := h.String()
	if !strings.HasPrefix(s, "sha256:") || len(s) != len("sha256:")+52 {
		t.Fatalf("String() = %q, want sha256: and 52 Nix base32 digits", s)
	}
	if back, err := ParseHash(s); err != nil || back != h {
		t.Errorf("ParseHash(%q) = %v, %v", s, back, err)
	}
	if back, err := ParseHexHash("sha256:" + h.Hex()); err != nil || back != h {
		t.Errorf("ParseHexHash of the hex form = %v, %v", back, err)
	}
	b, err := json.Marshal(h)
	if err != nil || string(b) != `"`+s+`"` {
		t.Errorf("JSON %s, %v", b, err)
	}
	var fromJSON Hash
	if err := json.Unmarshal(b, &fromJSON); err != nil || fromJSON != h {
		t.Errorf("JSON read back as %v, %v", fromJSON, err)
	}
	for _, bad := range []string{
		"", "sha1:" + h.Hex(), h.Hex(), "sha256:" + h.Hex(), // ParseHash wants Nix base32
		"sha256:" + strings.Repeat("e", 52), s[:len(s)-1],
	} {
		if _, err := ParseHash(bad); err == nil {
			t.Errorf("ParseHash(%q) accepted it", bad)
		}
	}
	for _, bad := range []string{s, "sha256:" + h.Hex()[1:], "sha256:" + strings.Repeat("g", 64)} {
		if _, err := ParseHexHash(bad); err == nil {
			t.Errorf("ParseHexHash(%q) accepted it", bad)
		}
	}
}
