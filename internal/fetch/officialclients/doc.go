// Package officialclients holds no code, only tests: the emulators in
// internal/fetch are driven here by the official clients (go-passbolt) and
// by replays of the official Passwork SDK's request sequence, then what
// those clients wrote is read back with the injector binary's `get`.
//
// It is a module of its own so that go-passbolt and its dependencies stay
// out of injector's go.mod: they are test-only and never linked into the
// product. scripts/test runs it.
package officialclients
