// Package passwork implements the client-side encryption primitives of the
// Passwork password manager, bit-compatible with its official clients
// (passwork-python, js-connector): a custom base32, the CryptoJS "Salted__"
// AES format, master key derivation and hashing, RSA unwrapping of vault keys
// and the attachment hash.
//
// Errors never contain plaintext, keys or ciphertext.
package passwork

import "strings"

// alphabet is Passwork's base32 alphabet (Crockford-like, no i/l/o/s).
const alphabet = "0123456789abcdefghjkmnpqrtuvwxyz"

// decodeMap maps an input byte to its 5-bit value, or -1 for "skip".
// Built once from alphabet plus the aliases o→0, i→1, l→1, s→5.
var decodeMap = func() [256]int8 {
	var m [256]int8
	for i := range m {
		m[i] = -1
	}
	for i, c := range alphabet {
		m[c] = int8(i)
		m[strings.ToUpper(string(c))[0]] = int8(i)
	}
	for c, v := range map[byte]int8{'o': 0, 'i': 1, 'l': 1, 's': 5} {
		m[c] = v
		m[c-'a'+'A'] = v
	}
	return m
}()

// EncodeBase32 encodes b MSB-first without padding; a trailing partial group
// is left-aligned and zero-filled.
func EncodeBase32(b []byte) string {
	var out strings.Builder
	out.Grow((len(b)*8 + 4) / 5)
	var buf uint32
	bits := 0
	for _, c := range b {
		buf = buf<<8 | uint32(c)
		bits += 8
		for bits >= 5 {
			bits -= 5
			out.WriteByte(alphabet[(buf>>bits)&31])
		}
	}
	if bits > 0 {
		out.WriteByte(alphabet[(buf<<(5-bits))&31])
	}
	return out.String()
}

// DecodeBase32 decodes s case-insensitively, accepting the aliases o, i, l
// and s, skipping characters outside the alphabet and dropping leftover bits.
// It never fails, like the official decoders.
func DecodeBase32(s string) []byte {
	out := make([]byte, 0, len(s)*5/8)
	var buf uint32
	bits := 0
	for i := 0; i < len(s); i++ {
		v := decodeMap[s[i]]
		if v < 0 {
			continue
		}
		buf = buf<<5 | uint32(v)
		bits += 5
		if bits >= 8 {
			bits -= 8
			out = append(out, byte(buf>>bits))
		}
	}
	return out
}
