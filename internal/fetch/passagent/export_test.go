package passagent

// Derivations returns how many times c has run the KDF.
func Derivations(c *Client) int {
	c.keyMu.Lock()
	defer c.keyMu.Unlock()
	return c.derivations
}

// MemoStats reports the list pages c decoded and the envelopes it opened
// (memo misses) under the current key so far.
func MemoStats(c *Client) (pagesDecoded, opened int) {
	_, pagesDecoded = c.bodies.Stats()
	c.opened.mu.Lock()
	m := c.opened.m
	c.opened.mu.Unlock()
	if m != nil {
		_, opened = m.Stats()
	}
	return pagesDecoded, opened
}
