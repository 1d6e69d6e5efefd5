// Package pgpwork is the OpenPGP work a cold Passbolt run cannot avoid,
// done with gopenpgp directly: the floor that bench's
// BenchmarkRunColdPassbolt divides the client's CPU by, measured both in
// the benchmark's process and as a new process (../passbolt).
package pgpwork

import (
	"encoding/json"

	"github.com/ProtonMail/gopenpgp/v3/crypto"
)

// Messages is the ciphertext a cold run must decrypt, as the server
// serves it (the fields of passbolttest.Messages, so one converts to the
// other; it is also the JSON the floor program reads). A type of its own,
// not passbolttest's, so that the floor program links gopenpgp and none
// of injector's code: the floor must not pay for what it measures against.
type Messages struct {
	PrivateKey   string // the user's armored private key, locked with Passphrase
	Passphrase   string
	LoginReply   string   // a JWT login reply, encrypted to the user
	MetadataKeys []string // metadata_private_keys entries, encrypted to the user
	// Folders and Metadata are the v5 metadata of every folder and
	// resource; Secrets the user's secret of every resource.
	Folders, Metadata, Secrets []string
}

// Decrypt unlocks the user's private key (its S2K key derivation is most
// of the work), then decrypts every message once without verifying a
// signature: the JWT login reply, the metadata key entries (and parses the
// shared keys they hold), the folder and resource metadata and the
// secrets. One decryption handle per key; each message is dearmored once,
// its session key decrypted with the key and its data with the session
// key.
func Decrypt(m Messages) error {
	locked, err := crypto.NewKeyFromArmored(m.PrivateKey)
	if err != nil {
		return err
	}
	user, err := locked.Unlock([]byte(m.Passphrase))
	if err != nil {
		return err
	}
	uh, err := crypto.PGP().Decryption().DecryptionKey(user).New()
	if err != nil {
		return err
	}
	if _, err := decrypt(uh, m.LoginReply); err != nil {
		return err
	}
	mh := crypto.PGP().Decryption()
	for _, data := range m.MetadataKeys {
		plain, err := decrypt(uh, data)
		if err != nil {
			return err
		}
		var entry struct {
			ArmoredKey string `json:"armored_key"`
		}
		if err := json.Unmarshal(plain, &entry); err != nil {
			return err
		}
		k, err := crypto.NewKeyFromArmored(entry.ArmoredKey)
		if err != nil {
			return err
		}
		mh = mh.DecryptionKey(k)
	}
	meta, err := mh.New()
	if err != nil {
		return err
	}
	for _, list := range [][]string{m.Folders, m.Metadata} {
		for _, armored := range list {
			if _, err := decrypt(meta, armored); err != nil {
				return err
			}
		}
	}
	for _, armored := range m.Secrets {
		if _, err := decrypt(uh, armored); err != nil {
			return err
		}
	}
	return nil
}

// decrypt opens one armored message with h, without a signature check.
func decrypt(h crypto.PGPDecryption, armored string) ([]byte, error) {
	msg, err := crypto.NewPGPMessageFromArmored(armored)
	if err != nil {
		return nil, err
	}
	sk, err := h.DecryptSessionKey(msg.BinaryKeyPacket())
	if err != nil {
		return nil, err
	}
	sh, err := crypto.PGP().Decryption().SessionKey(sk).New()
	if err != nil {
		return nil, err
	}
	res, err := sh.Decrypt(msg.BinaryDataPacket(), crypto.Bytes)
	if err != nil {
		return nil, err
	}
	return res.Bytes(), nil
}
