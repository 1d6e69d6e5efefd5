package passwork

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// tokenState is what PASSWORK_TOKEN_STATE_FILE holds. Origin fingerprints
// the configured pair the state descends from: when an operator puts a new
// pair into the environment, the stale file is ignored instead of
// overriding it.
type tokenState struct {
	Origin       string `json:"origin"`
	AccessToken  string `json:"accessToken"`
	RefreshToken string `json:"refreshToken"`
}

func origin(access, refresh string) string {
	sum := sha256.Sum256([]byte(access + "\x00" + refresh))
	return hex.EncodeToString(sum[:])
}

// loadTokenState returns the persisted pair if the file exists and descends
// from the configured pair.
func loadTokenState(path, cfgAccess, cfgRefresh string) (tokenState, bool, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return tokenState{}, false, nil
	}
	if err != nil {
		return tokenState{}, false, fmt.Errorf("passwork: read token state: %w", err)
	}
	var st tokenState
	if err := json.Unmarshal(data, &st); err != nil || st.AccessToken == "" {
		return tokenState{}, false, fmt.Errorf("passwork: token state file %s is malformed", path)
	}
	return st, st.Origin == origin(cfgAccess, cfgRefresh), nil
}

// saveTokenState writes the pair atomically (temp file + rename) with mode
// 0600, so a crash never leaves a half-written file.
func saveTokenState(path, cfgAccess, cfgRefresh, access, refresh string) error {
	data, _ := json.Marshal(tokenState{Origin: origin(cfgAccess, cfgRefresh), AccessToken: access, RefreshToken: refresh})
	tmp, err := os.CreateTemp(filepath.Dir(path), ".passwork-tokens-*")
	if err != nil {
		return fmt.Errorf("passwork: save token state: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if err := tmp.Chmod(0o600); err == nil {
		if _, err = tmp.Write(data); err == nil {
			if err = tmp.Sync(); err == nil {
				err = tmp.Close()
			}
		}
		if err != nil {
			tmp.Close()
			return fmt.Errorf("passwork: save token state: %w", err)
		}
	} else {
		tmp.Close()
		return fmt.Errorf("passwork: save token state: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("passwork: save token state: %w", err)
	}
	return nil
}
