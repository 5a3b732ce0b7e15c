package signing

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSignStream: the streamed ed25519 signature is crypto/ed25519's,
// byte for byte, for messages of many lengths.
func TestSignStream(t *testing.T) {
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 63, 64, 127, 128, 1000, 1 << 16, 1<<20 + 7} {
		msg := make([]byte, n)
		for i := range msg {
			msg[i] = byte(r.Uint32())
		}
		got, err := SignStream(priv, bytes.NewReader(msg))
		if err != nil {
			t.Fatal(err)
		}
		if want := ed25519.Sign(priv, msg); !bytes.Equal(got, want) {
			t.Errorf("%d bytes: streamed signature differs from ed25519.Sign", n)
		}
	}
}

func TestPEMKeys(t *testing.T) {
	dir := t.TempDir()
	priv, pub := filepath.Join(dir, "k.key"), filepath.Join(dir, "k.pub")
	if err := WritePEMFiles(priv, pub); err != nil {
		t.Fatal(err)
	}
	if err := WritePEMFiles(priv, filepath.Join(dir, "other.pub")); err == nil {
		t.Error("WritePEMFiles overwrote a key")
	}
	if !IsPEM(priv) {
		t.Error("IsPEM: false for a PEM key")
	}
	k, err := ReadPEMKey(priv, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !k.Deterministic() {
		t.Error("an ed25519 key is not deterministic")
	}
	pubPEM, _ := os.ReadFile(pub)
	if got, _ := k.PublicPEM(); !bytes.Equal(got, pubPEM) {
		t.Errorf("PublicPEM %q, want the public key file %q", got, pubPEM)
	}
	block, _ := pem.Decode(pubPEM)
	pk, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("a message")
	sig, _ := k.Sign(msg)
	if !ed25519.Verify(pk.(ed25519.PublicKey), msg, sig) {
		t.Error("Sign: the signature does not verify")
	}
	f := filepath.Join(dir, "blob")
	os.WriteFile(f, msg, 0o644)
	sum := sha256.Sum256(msg)
	if fs, _ := k.SignFile(f, sum[:]); !bytes.Equal(fs, sig) {
		t.Error("SignFile and Sign differ for ed25519")
	}

	// ECDSA P-256 signs the SHA-256.
	ek, err := ecdsa.GenerateKey(ellipticP256(), nil)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(ek)
	ef := filepath.Join(dir, "ec.key")
	os.WriteFile(ef, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
	e, err := ReadPEMKey(ef, nil)
	if err != nil {
		t.Fatal(err)
	}
	esig, _ := e.SignFile(f, sum[:])
	if !ecdsa.VerifyASN1(&ek.PublicKey, sum[:], esig) {
		t.Error("ECDSA SignFile: the signature does not verify")
	}

	// Not keys.
	nix := filepath.Join(dir, "nix.secret")
	sec, _, _ := Keygen("cache-1")
	os.WriteFile(nix, []byte(sec), 0o600)
	for _, tt := range []struct{ file, want string }{
		{nix, "not a PEM file"},
		{pub, `a PEM "PUBLIC KEY" block`},
		{filepath.Join(dir, "none"), "no such file"},
	} {
		if _, err := ReadPEMKey(tt.file, nil); err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), tt.file) {
			t.Errorf("ReadPEMKey(%s) = %v, want an error naming the file and %q", tt.file, err, tt.want)
		}
	}
}

func ellipticP256() elliptic.Curve { return elliptic.P256() }
