// Package web holds the browser-facing files Sealpost embeds in its
// binary: the interactive API reference served at /docs (an HTML page
// with separate JavaScript and CSS, no inline script or style, no
// third-party code, working offline) and the console's page templates and
// stylesheet, and the recipient portal's page templates and stylesheet.
// This package only holds files; the HTTP layer decides how they are
// served.
package web

import (
	"embed"
	"io/fs"
)

//go:embed docs console portal
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

// Console returns the console's html/template files (layout.html and one
// file per page) and console.css.
func Console() fs.FS {
	sub, err := fs.Sub(files, "console")
	if err != nil {
		panic(err) // as in Docs
	}
	return sub
}

// Portal returns the recipient portal's html/template files (layout.html
// and one file per page) and portal.css.
func Portal() fs.FS {
	sub, err := fs.Sub(files, "portal")
	if err != nil {
		panic(err) // as in Docs
	}
	return sub
}
