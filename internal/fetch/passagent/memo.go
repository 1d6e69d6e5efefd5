package passagent

import (
	"bytes"
	"sync"

	"github.com/injector-dev/injector/internal/fetch"
)

// opens remembers, in memory only, the payloads of the entries this client
// opened under the current vault key, keyed by the entry's wrapped item
// key and encrypted data compared in full. Opening is a pure function of
// the two and the key, so a warm refresh of unchanged data opens no
// envelope (the whole of the floor: one unwrap and one AES-GCM open per
// entry); an edited entry comes with a new encrypted_data (a new nonce
// whatever the change) and is opened. Failures are not remembered: a
// damaged or wrong-key entry is tried again, and reported, every time.
// A new vault key starts an empty memo. Entries unused for 16 Resolve
// calls are dropped (fetch.Memo); nothing is written anywhere.
type opens struct {
	mu  sync.Mutex
	key []byte
	m   *fetch.Memo[sealed, payload]
}

// sealed is one entry's ciphertext as the list sends it.
type sealed struct{ wrappedItemKey, encryptedData string }

// under returns the memo of what was opened under key.
func (o *opens) under(key []byte) *fetch.Memo[sealed, payload] {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.m == nil || !bytes.Equal(o.key, key) {
		o.key, o.m = key, &fetch.Memo[sealed, payload]{}
	}
	return o.m
}

// endCall ends one Resolve call.
func (o *opens) endCall() {
	o.mu.Lock()
	m := o.m
	o.mu.Unlock()
	if m != nil {
		m.EndCall()
	}
}
