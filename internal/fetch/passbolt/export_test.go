package passbolt

// PlainCacheStats exposes the plaintext cache's counters to the tests of
// package passbolt_test, which can use the emulator.
func PlainCacheStats(c *Client) (cached, decrypts int) { return c.plain.stats() }

// BodyReuses is how many response bodies the client did not decode again.
func BodyReuses(c *Client) int { return c.plain.bodyReuses() }
