package passwork

// MemoStats reports the bodies c decoded and the AESpw decryptions it did
// (memo misses) so far.
func MemoStats(c *Client) (bodiesDecoded, decrypts int) {
	_, bodiesDecoded = c.memo.bodies.Stats()
	_, decrypts = c.memo.aespw.Stats()
	return bodiesDecoded, decrypts
}
