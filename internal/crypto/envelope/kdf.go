package envelope

import (
	"errors"
	"fmt"

	"golang.org/x/crypto/argon2"
)

// KDFParams are the Argon2id parameters that travel with the salt from
// GET /api/vault/salt.
type KDFParams struct {
	MemoryKiB   uint32
	Iterations  uint32
	Parallelism uint8
}

// DefaultKDF is PassAgent's documented profile: 64 MiB, t=3, p=4.
func DefaultKDF() KDFParams { return KDFParams{MemoryKiB: 64 << 10, Iterations: 3, Parallelism: 4} }

// FallbackKDF is PassAgent's documented low-memory profile: 32 MiB, t=4,
// p=4.
func FallbackKDF() KDFParams { return KDFParams{MemoryKiB: 32 << 10, Iterations: 4, Parallelism: 4} }

// Caps on what a server may ask a client to spend on one derivation. The
// parameters travel with the salt, so a hostile or broken server chooses
// them: uncapped, 1 GiB × 64 passes took a gigabyte and a minute per
// attempt. Memory is capped at the larger documented profile's (64 MiB),
// which is the client's peak; iterations and lanes keep headroom for a
// server that strengthens its profile, since they cost time (about a
// third of a second per pass over 64 MiB on one core), not memory.
// A vault whose parameters exceed the caps can still be read with a
// pre-derived key (PASSAGENT_VAULT_KEY).
const (
	MaxMemoryKiB   = 64 << 10
	MaxIterations  = 10
	MaxParallelism = 16
	minSaltSize    = 8
	maxSaltSize    = 1024
	minMemoryPerP  = 8 // Argon2 needs 8 KiB per lane
)

// Validate rejects parameters Argon2id cannot run with or that exceed the
// client's caps.
func (p KDFParams) Validate() error {
	switch {
	case p.Parallelism == 0 || p.Parallelism > MaxParallelism:
		return fmt.Errorf("argon2id parallelism %d out of range 1..%d", p.Parallelism, MaxParallelism)
	case p.Iterations == 0 || p.Iterations > MaxIterations:
		return fmt.Errorf("argon2id iterations %d out of range 1..%d", p.Iterations, MaxIterations)
	case p.MemoryKiB < minMemoryPerP*uint32(p.Parallelism) || p.MemoryKiB > MaxMemoryKiB:
		return fmt.Errorf("argon2id memory %d KiB out of range %d..%d", p.MemoryKiB, minMemoryPerP*uint32(p.Parallelism), MaxMemoryKiB)
	}
	return nil
}

// DeriveVaultKey computes the 32-byte vault key from the master password
// (its UTF-8 bytes, unnormalised) and the per-user salt.
func DeriveVaultKey(masterPassword string, salt []byte, p KDFParams) ([]byte, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if len(salt) < minSaltSize || len(salt) > maxSaltSize {
		return nil, fmt.Errorf("vault salt is %d bytes, want %d..%d", len(salt), minSaltSize, maxSaltSize)
	}
	if masterPassword == "" {
		return nil, errors.New("master password is empty")
	}
	return argon2.IDKey([]byte(masterPassword), salt, p.Iterations, p.MemoryKiB, p.Parallelism, KeySize), nil
}
