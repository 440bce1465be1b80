package httpapi

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"time"

	"github.com/sealpost/sealpost/api"
	"github.com/sealpost/sealpost/web"
)

// asset is a fixed file served from memory with a strong ETag, so
// browsers revalidate cheaply (RFC 9110 §8.8.3).
type asset struct {
	body        []byte
	contentType string
	etag        string
}

func newAsset(body []byte, contentType string) asset {
	sum := sha256.Sum256(body)
	return asset{body: body, contentType: contentType, etag: `"` + hex.EncodeToString(sum[:16]) + `"`}
}

func (a asset) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", a.contentType)
	h.Set("ETag", a.etag)
	h.Set("Cache-Control", "no-cache")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}

// docsRoutes serves the contract and the interactive reference:
// /openapi.yaml, /openapi.json, /docs and its files under /docs/.
func (s *Server) docsRoutes() error {
	specJSON, err := api.JSON()
	if err != nil {
		return err
	}
	// RFC 9512 registers application/yaml.
	s.mux.Handle("GET /openapi.yaml", newAsset(api.Spec, "application/yaml"))
	s.mux.Handle("GET /openapi.json", newAsset(specJSON, "application/json"))

	files := make(map[string]asset)
	err = fs.WalkDir(web.Docs(), ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(web.Docs(), name)
		if err != nil {
			return err
		}
		ctype := mime.TypeByExtension(path.Ext(name))
		if ctype == "" {
			ctype = "application/octet-stream"
		}
		files[name] = newAsset(body, ctype)
		return nil
	})
	if err != nil {
		return fmt.Errorf("read embedded docs: %w", err)
	}
	index, ok := files["index.html"]
	if !ok {
		return fmt.Errorf("embedded docs lack index.html")
	}
	s.mux.Handle("GET /docs", index)
	s.mux.HandleFunc("GET /docs/{file}", func(w http.ResponseWriter, r *http.Request) {
		a, ok := files[r.PathValue("file")]
		if !ok {
			writeProblem(w, r, NewProblem(TypeNotFound, "no such file"))
			return
		}
		a.ServeHTTP(w, r)
	})
	return nil
}
