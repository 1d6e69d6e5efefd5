package fetch

import (
	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// UnmarshalJSON decodes a response body into out in one pass. It uses the
// encoding/json/v2 implementation (the go-json-experiment module, until Go
// ships it without GOEXPERIMENT), which validates while it decodes, where
// encoding/json scans a body once to validate it and again to decode it;
// on a batch of Passwork items it is about twice as fast. The options keep
// encoding/json's leniency about what servers send (invalid UTF-8,
// repeated member names); member names match exactly, so every field of
// out needs its json tag.
// Further options (a provider's own unmarshalers) come after these.
func UnmarshalJSON(data []byte, out any, opts ...jsonv2.Options) error {
	if len(opts) == 0 {
		return jsonv2.Unmarshal(data, out, jsontext.AllowInvalidUTF8(true), jsontext.AllowDuplicateNames(true))
	}
	return jsonv2.Unmarshal(data, out, append([]jsonv2.Options{jsontext.AllowInvalidUTF8(true), jsontext.AllowDuplicateNames(true)}, opts...)...)
}
