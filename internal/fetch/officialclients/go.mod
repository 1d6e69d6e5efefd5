module github.com/injector-dev/injector/internal/fetch/officialclients

go 1.26.4

require (
	github.com/injector-dev/injector v0.0.0
	github.com/passbolt/go-passbolt v0.8.1
)

require (
	github.com/ProtonMail/go-crypto v1.5.2 // indirect
	github.com/ProtonMail/gopenpgp/v3 v3.5.2 // indirect
	github.com/cloudflare/circl v1.6.4 // indirect
	github.com/go-json-experiment/json v1.27.2 // indirect
	github.com/google/go-querystring v1.2.0 // indirect
	github.com/google/uuid v1.6.0 // indirect
	github.com/santhosh-tekuri/jsonschema/v6 v6.0.2 // indirect
	golang.org/x/crypto v0.58.0 // indirect
	golang.org/x/sync v0.24.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
	golang.org/x/text v0.43.0 // indirect
)

replace github.com/injector-dev/injector => ../../..
