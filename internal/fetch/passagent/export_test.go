package passagent

// Derivations returns how many times c has run the KDF.
func Derivations(c *Client) int {
	c.keyMu.Lock()
	defer c.keyMu.Unlock()
	return c.derivations
}
