package emulator_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"testing"

	gossh "golang.org/x/crypto/ssh"
)

func mustKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return priv
}

func mustSigner(t testing.TB) gossh.Signer {
	t.Helper()
	s, err := gossh.NewSignerFromKey(mustKey(t))
	if err != nil {
		t.Fatal(err)
	}
	return s
}
