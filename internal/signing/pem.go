package signing

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"

	"filippo.io/edwards25519"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
)

// PasswordEnv is the environment variable that holds the password of
// cosign's encrypted keys, as for cosign itself.
const PasswordEnv = "COSIGN_PASSWORD"

// Key is a private key that signs what cosign verifies: blobs
// (`cosign verify-blob`), image signature payloads and DSSE envelopes.
// Keys are ed25519 or ECDSA P-256. ed25519 signatures are plain ed25519
// over the whole message (cosign rejects the pre-hashed variant), hence
// byte-identical for the same message; ECDSA signs the message's SHA-256
// and its signatures differ from run to run (randomised nonces).
type Key struct {
	signer crypto.Signer
	// File is the file the key was read from.
	File string
}

// IsPEM reports whether the key file at path is a PEM file (a key for
// cosign), rather than a Nix binary cache key.
func IsPEM(path string) bool {
	b, err := os.ReadFile(path)
	return err == nil && bytes.HasPrefix(bytes.TrimSpace(b), []byte("-----BEGIN "))
}

// ReadPEMKey reads a private key from a PEM file: PKCS#8 ("PRIVATE
// KEY"), or cosign's encrypted keys ("ENCRYPTED SIGSTORE PRIVATE KEY",
// "ENCRYPTED COSIGN PRIVATE KEY") with the password in COSIGN_PASSWORD.
// Errors name the file. lookupEnv finds the password (nil: os.LookupEnv).
func ReadPEMKey(path string, lookupEnv func(string) (string, bool)) (*Key, error) {
	if lookupEnv == nil {
		lookupEnv = os.LookupEnv
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, errors.Unwrap(err))
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, fmt.Errorf("key file %s: not a PEM file", path)
	}
	encrypted := block.Type == "ENCRYPTED SIGSTORE PRIVATE KEY" || block.Type == "ENCRYPTED COSIGN PRIVATE KEY"
	if encrypted {
		if _, ok := lookupEnv(PasswordEnv); !ok {
			return nil, fmt.Errorf("key file %s: an encrypted key, and %s is not set", path, PasswordEnv)
		}
	} else if block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("key file %s: a PEM %q block; want a PKCS#8 \"PRIVATE KEY\" (ed25519 or ECDSA P-256) or a cosign key", path, block.Type)
	}
	priv, err := cryptoutils.UnmarshalPEMToPrivateKey(b, func(bool) ([]byte, error) {
		pw, _ := lookupEnv(PasswordEnv)
		return []byte(pw), nil
	})
	if err != nil {
		if encrypted {
			return nil, fmt.Errorf("key file %s: cannot decrypt the key with the password in %s (wrong password?)", path, PasswordEnv)
		}
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	switch k := priv.(type) {
	case ed25519.PrivateKey:
		return &Key{signer: k, File: path}, nil
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("key file %s: an ECDSA key on %s; only P-256 is supported", path, k.Curve.Params().Name)
		}
		return &Key{signer: k, File: path}, nil
	}
	kind := fmt.Sprintf("%T", priv)
	if _, ok := priv.(*rsa.PrivateKey); ok {
		kind = "RSA"
	}
	return nil, fmt.Errorf("key file %s: an %s key; only ed25519 and ECDSA P-256 keys are supported", path, kind)
}

// GeneratePEM makes an ed25519 key pair: the private key as PKCS#8 PEM
// and the public key as PKIX PEM ("PUBLIC KEY", what `cosign verify
// --key` reads).
func GeneratePEM() (private, public []byte, err error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, nil, err
	}
	pubDER, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), nil
}

// PublicPEM is the key's public key as PKIX PEM.
func (k *Key) PublicPEM() ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(k.signer.Public())
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// Deterministic reports whether the key signs the same message with the
// same bytes every time (ed25519).
func (k *Key) Deterministic() bool {
	_, ok := k.signer.(ed25519.PrivateKey)
	return ok
}

// Sign signs msg: ed25519 over msg itself, ECDSA (ASN.1) over its SHA-256.
func (k *Key) Sign(msg []byte) ([]byte, error) {
	if priv, ok := k.signer.(ed25519.PrivateKey); ok {
		return ed25519.Sign(priv, msg), nil
	}
	sum := sha256.Sum256(msg)
	return k.signer.Sign(rand.Reader, sum[:], crypto.SHA256)
}

// SignFile signs the file at path as Sign signs its contents, without
// holding them in memory. sum is the file's SHA-256, which the caller has
// computed while writing it: ECDSA signs it directly; ed25519 reads the
// file twice (SignStream).
func (k *Key) SignFile(path string, sum []byte) ([]byte, error) {
	priv, ok := k.signer.(ed25519.PrivateKey)
	if !ok {
		return k.signer.Sign(rand.Reader, sum, crypto.SHA256)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return SignStream(priv, f)
}

// SignStream is ed25519.Sign(priv, message) for a message read from r,
// twice: ed25519 hashes the message once for its nonce and once more,
// after the nonce's point, for the challenge (RFC 8032, section 5.1.6),
// and Go's crypto/ed25519 signs messages held in memory only. Outputs of
// gigabytes are signed so with constant memory.
func SignStream(priv ed25519.PrivateKey, r io.ReadSeeker) ([]byte, error) {
	h := sha512.Sum512(priv.Seed())
	s, err := edwards25519.NewScalar().SetBytesWithClamping(h[:32])
	if err != nil {
		return nil, err
	}
	pub := priv.Public().(ed25519.PublicKey)

	hash := func(prefix ...[]byte) (*edwards25519.Scalar, error) {
		d := sha512.New()
		for _, p := range prefix {
			d.Write(p)
		}
		if _, err := r.Seek(0, io.SeekStart); err != nil {
			return nil, err
		}
		if _, err := io.Copy(d, r); err != nil {
			return nil, err
		}
		return edwards25519.NewScalar().SetUniformBytes(d.Sum(nil))
	}
	nonce, err := hash(h[32:])
	if err != nil {
		return nil, err
	}
	R := new(edwards25519.Point).ScalarBaseMult(nonce).Bytes()
	k, err := hash(R, pub)
	if err != nil {
		return nil, err
	}
	S := edwards25519.NewScalar().MultiplyAdd(k, s, nonce)
	return append(R, S.Bytes()...), nil
}

// WritePEMFiles makes an ed25519 pair (GeneratePEM) and writes the private
// key to privateFile (0600) and the public key to publicFile (0644),
// refusing to overwrite either.
func WritePEMFiles(privateFile, publicFile string) error {
	priv, pub, err := GeneratePEM()
	if err != nil {
		return err
	}
	if err := writeNew(privateFile, string(priv), 0o600); err != nil {
		return fmt.Errorf("private key: %w", err)
	}
	if err := writeNew(publicFile, string(pub), 0o644); err != nil {
		os.Remove(privateFile)
		return fmt.Errorf("public key: %w", err)
	}
	return nil
}
