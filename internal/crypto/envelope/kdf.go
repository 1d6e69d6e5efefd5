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

// Limits on what a server may ask a client to spend. The documented
// profiles (64 MiB/t=3, 32 MiB/t=4) are far inside them; the caps stop a
// hostile or broken server from making the client allocate gigabytes.
const (
	maxMemoryKiB   = 1 << 20 // 1 GiB
	maxIterations  = 64
	minSaltSize    = 8
	maxSaltSize    = 1024
	minMemoryPerP  = 8 // Argon2 needs 8 KiB per lane
	maxParallelism = 64
)

// Validate rejects parameters Argon2id cannot run with or that exceed the
// client's resource caps.
func (p KDFParams) Validate() error {
	switch {
	case p.Parallelism == 0 || p.Parallelism > maxParallelism:
		return fmt.Errorf("argon2id parallelism %d out of range 1..%d", p.Parallelism, maxParallelism)
	case p.Iterations == 0 || p.Iterations > maxIterations:
		return fmt.Errorf("argon2id iterations %d out of range 1..%d", p.Iterations, maxIterations)
	case p.MemoryKiB < minMemoryPerP*uint32(p.Parallelism) || p.MemoryKiB > maxMemoryKiB:
		return fmt.Errorf("argon2id memory %d KiB out of range %d..%d", p.MemoryKiB, minMemoryPerP*uint32(p.Parallelism), maxMemoryKiB)
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
