// Package web holds the browser-facing files Sealpost embeds in its
// binary: for now the interactive API reference served at /docs (an HTML
// page with separate JavaScript and CSS, no inline script or style, no
// third-party code, working offline). The console and portal templates
// join it later. This package only holds files; the HTTP layer decides
// how they are served.
package web

import (
	"embed"
	"io/fs"
)

//go:embed docs
var files embed.FS

// Docs returns the API reference files: index.html (the page, which loads
// docs.css and docs.js relative to /docs/ and reads /openapi.json).
func Docs() fs.FS {
	sub, err := fs.Sub(files, "docs")
	if err != nil {
		// "docs" is a valid, embedded directory name; Sub cannot fail.
		panic(err)
	}
	return sub
}
