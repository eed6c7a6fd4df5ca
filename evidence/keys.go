package evidence

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"sort"
)

// Keys are Ed25519, stored as PEM: PKCS#8 "PRIVATE KEY" and PKIX "PUBLIC KEY".
// Both forms are read by openssl, so a lab can check signatures without eksir.

// KeyID names a public key: the first 16 bytes of the SHA-256 of the raw key,
// in hex. It appears in custody records and in the DSSE envelope.
func KeyID(pub ed25519.PublicKey) string {
	return SumHex(pub)[:32]
}

// Signer signs custody records and seal statements.
type Signer struct {
	priv ed25519.PrivateKey
	id   string
}

// NewSigner wraps an Ed25519 private key.
func NewSigner(priv ed25519.PrivateKey) *Signer {
	return &Signer{priv: priv, id: KeyID(priv.Public().(ed25519.PublicKey))}
}

// KeyID returns the signer's key ID; the error is always nil (dsse.Signer).
func (s *Signer) KeyID() (string, error) { return s.id, nil }

// ID returns the signer's key ID.
func (s *Signer) ID() string { return s.id }

// Public returns the public half of the key.
func (s *Signer) Public() ed25519.PublicKey { return s.priv.Public().(ed25519.PublicKey) }

// Sign signs data as-is (Ed25519 hashes internally); it implements dsse.Signer.
func (s *Signer) Sign(_ context.Context, data []byte) ([]byte, error) {
	return ed25519.Sign(s.priv, data), nil
}

// GenerateKey writes a new key pair: the private key to path (0600, refusing
// to overwrite) and the public key to path+".pub" (0644).
func GenerateKey(path string) (pubPath string, id string, err error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", "", fmt.Errorf("generate key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return "", "", fmt.Errorf("encode private key: %w", err)
	}
	pubPath = path + ".pub"
	for _, p := range []string{path, pubPath} {
		if _, err := os.Lstat(p); err == nil {
			return "", "", invalidf("choose another --out, or move the old key away first", "%s already exists; refusing to overwrite a key", p)
		}
	}
	if err := writeFileSync(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return "", "", err
	}
	if err := writeFileSync(pubPath, EncodePublicKey(pub), 0o644); err != nil {
		return "", "", err
	}
	return pubPath, KeyID(pub), nil
}

// EncodePublicKey returns the PEM PKIX form of pub.
func EncodePublicKey(pub ed25519.PublicKey) []byte {
	der, _ := x509.MarshalPKIXPublicKey(pub) // cannot fail for an Ed25519 key
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// LoadSigner reads a PEM PKCS#8 Ed25519 private key. It refuses key files
// that others can read, as ssh does.
func LoadSigner(path string) (*Signer, error) {
	const hint = "create one with 'eksir keygen --out FILE' and pass it with --key or EKSIR_SIGNING_KEY"
	fi, err := os.Stat(path)
	if err != nil {
		return nil, invalidErr(err, hint, "signing key %s", path)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, invalidf("run 'chmod 600 "+path+"'", "signing key %s is readable by others (mode %v)", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, invalidErr(err, hint, "signing key %s", path)
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, invalidf(hint, "%s is not a PEM \"PRIVATE KEY\" file", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, invalidErr(err, hint, "parse signing key %s", path)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, invalidf(hint, "%s holds a %T key; eksir signs with Ed25519", path, k)
	}
	return NewSigner(priv), nil
}

// ParsePublicKey reads a PEM PKIX Ed25519 public key.
func ParsePublicKey(b []byte) (ed25519.PublicKey, error) {
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PUBLIC KEY" {
		return nil, errors.New("not a PEM \"PUBLIC KEY\"")
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	pub, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("a %T key, not Ed25519", k)
	}
	return pub, nil
}

// LoadPublicKey reads a public key file.
func LoadPublicKey(path string) (ed25519.PublicKey, error) {
	b, err := readLimited(path, maxSmallTag)
	if err != nil {
		return nil, invalidErr(err, "pass the .pub file written by 'eksir keygen'", "public key %s", path)
	}
	pub, err := ParsePublicKey(b)
	if err != nil {
		return nil, invalidErr(err, "pass the .pub file written by 'eksir keygen'", "public key %s", path)
	}
	return pub, nil
}

// KeyRing holds the public keys a verifier trusts, by key ID.
type KeyRing map[string]ed25519.PublicKey

// Add trusts pub.
func (k KeyRing) Add(pub ed25519.PublicKey) { k[KeyID(pub)] = pub }

// IDs lists the trusted key IDs in order.
func (k KeyRing) IDs() []string {
	ids := make([]string, 0, len(k))
	for id := range k {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// keyVerifier adapts one public key to dsse.Verifier.
type keyVerifier struct{ pub ed25519.PublicKey }

func (v keyVerifier) Verify(_ context.Context, data, sig []byte) error {
	if !ed25519.Verify(v.pub, data, sig) {
		return errors.New("ed25519: invalid signature")
	}
	return nil
}
func (v keyVerifier) KeyID() (string, error)   { return KeyID(v.pub), nil }
func (v keyVerifier) Public() crypto.PublicKey { return v.pub }
