package passbolttest

import (
	"encoding/json"

	"github.com/injector-dev/injector/internal/crypto/pgp"
)

// Messages is the ciphertext a client that reads the whole tree must
// decrypt, as the server stores and serves it, for measuring the
// unavoidable OpenPGP work of a cold run (bench/).
type Messages struct {
	PrivateKey string // the user's armored private key, locked with Passphrase
	Passphrase string
	// LoginReply is a JWT login reply: a challenge encrypted to the user
	// and signed by the server, as POST /auth/jwt/login.json sends it.
	LoginReply string
	// MetadataKeys are the metadata_private_keys entries encrypted to the
	// user, one per shared metadata key.
	MetadataKeys []string
	// Folders and Metadata are the v5 metadata of every folder and
	// resource (encrypted to a shared metadata key or to the user);
	// Secrets the user's secret of every resource.
	Folders, Metadata, Secrets []string
}

// Messages returns the stored ciphertext (see Messages); the login reply
// and the metadata key entries are encrypted afresh, as the server does
// per request.
func (s *Server) Messages() (Messages, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := Messages{PrivateKey: s.userArmored, Passphrase: Passphrase}
	userPub, err := s.userKey.ToPublic()
	if err != nil {
		return m, err
	}
	reply, _ := json.Marshal(challenge{Version: "1.0.0", Domain: s.URL, VerifyToken: newUUID(),
		AccessToken: "at." + randomHex(24), RefreshToken: newUUID()})
	if m.LoginReply, err = pgp.EncryptSign(reply, userPub, s.serverKey); err != nil {
		return m, err
	}
	for _, mk := range s.metaKeys {
		data, err := s.metadataPrivateKey(mk, userPub)
		if err != nil {
			return m, err
		}
		m.MetadataKeys = append(m.MetadataKeys, data)
	}
	for _, f := range s.folders {
		if f.v5 {
			m.Folders = append(m.Folders, f.metadata)
		}
	}
	for _, r := range s.resources {
		if r.metadata != "" {
			m.Metadata = append(m.Metadata, r.metadata)
		}
		m.Secrets = append(m.Secrets, r.secret)
	}
	return m, nil
}
