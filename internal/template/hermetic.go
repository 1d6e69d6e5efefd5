package template

import "sync"

// Withheld are the sprig functions templates cannot call, with why. A
// template's output must be a function of its text and the secrets it
// names, nothing else:
//
//   - injector's environment holds its own credentials (PASSWORK_TOKEN…),
//     so a template that could read it (env, expandenv) could hand them to
//     the child, past every other guard;
//   - a network lookup (getHostByName) is an input the secrets tool does
//     not control, and a channel out;
//   - the clock, the local time zone and randomness make every render
//     differ, so a daemon would rewrite the file and fire its change
//     actions (a restart) at every interval.
//
// sprig.HermeticTxtFuncMap drops the environment, network, clock and
// random-string functions; this list also drops what it keeps although it
// is not repeatable (ago, randInt, shuffle, key and certificate
// generation, salted hashes, AES encryption with a random IV). A test
// checks that every function sprig calls non-hermetic is here. Built on
// first use: package initialisers run in every process.
var Withheld = sync.OnceValue(func() map[string]string {
	return map[string]string{
		"env":       "reads injector's environment, which holds its credentials",
		"expandenv": "reads injector's environment, which holds its credentials",

		"getHostByName": "makes a DNS query",

		"now":              "reads the clock",
		"ago":              "reads the clock",
		"date":             "reads the clock or the local time zone",
		"dateInZone":       "reads the clock or the local time zone",
		"date_in_zone":     "reads the clock or the local time zone",
		"dateModify":       "reads the clock or the local time zone",
		"date_modify":      "reads the clock or the local time zone",
		"mustDateModify":   "reads the clock or the local time zone",
		"must_date_modify": "reads the clock or the local time zone",
		"htmlDate":         "reads the clock or the local time zone",
		"htmlDateInZone":   "reads the clock or the local time zone",

		"randAlphaNum": "is random",
		"randAlpha":    "is random",
		"randAscii":    "is random",
		"randNumeric":  "is random",
		"randBytes":    "is random",
		"randInt":      "is random",
		"shuffle":      "is random",
		"uuidv4":       "is random",

		"genPrivateKey":            "is random (a new key at every render)",
		"genCA":                    "is random (a new certificate at every render)",
		"genCAWithKey":             "is random (a new certificate at every render)",
		"genSelfSignedCert":        "is random (a new certificate at every render)",
		"genSelfSignedCertWithKey": "is random (a new certificate at every render)",
		"genSignedCert":            "is random (a new certificate at every render)",
		"genSignedCertWithKey":     "is random (a new certificate at every render)",
		"bcrypt":                   "is random (a new salt at every render; store the hash as a secret instead)",
		"htpasswd":                 "is random (a new salt at every render; store the hash as a secret instead)",
		"encryptAES":               "is random (a new IV at every render)",
	}
})
