// Package examples embeds the example templates and the dev seed data, so
// `injector dev` works from any directory, including inside the image.
package examples

import "embed"

// FS holds dev/seed.json and templates/.
//
//go:embed dev/seed.json templates
var FS embed.FS
