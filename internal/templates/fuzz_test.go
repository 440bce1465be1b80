package templates_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/sealpost/sealpost/internal/templates"
)

// FuzzTemplate compiles arbitrary sources as every part and renders the
// ones that compile with arbitrary JSON data: nothing may panic or hang,
// and every failure is a *templates.Error.
func FuzzTemplate(f *testing.F) {
	for _, seed := range []struct{ src, data string }{
		{"Hi {{.name}}", `{"name":"Ada"}`},
		{`{{range $i, $e := .items}}<li>{{$i}} {{$e | upper}}</li>{{end}}`, `{"items":["a","b"]}`},
		{`{{with .p}}{{.q.r}}{{else}}{{default "x" .y}}{{end}}`, `{"p":{"q":{}}}`},
		{`<a href="{{.u}}" onclick="f({{.v}})">{{date "2006" .d}}</a>`, `{"u":"javascript:x","v":"</script>","d":"2026-01-01"}`},
		{`{{call .f}}{{template "x"}}{{define "x"}}{{end}}`, `{}`},
		{`{{range 100000000}}{{end}}{{printf "%999999d" 1}}`, `{}`},
		{`{{(index .a 0).b}}{{slice .s 1}}{{len .s}}{{truncate 2 .s}}`, `{"a":[{"b":1}],"s":"hello"}`},
	} {
		f.Add(seed.src, seed.data)
	}
	f.Fuzz(func(t *testing.T, src, data string) {
		for _, p := range []templates.Policy{templates.MissingError, templates.MissingEmpty} {
			cp, err := templates.Compile(templates.Content{Subject: src, Text: src, HTML: src}, p, templates.Limits{})
			var te *templates.Error
			if err != nil {
				if !errors.As(err, &te) {
					t.Fatalf("compile failed without a *templates.Error: %v", err)
				}
				continue
			}
			var m map[string]any
			_ = json.Unmarshal([]byte(data), &m)
			if _, err := cp.Render(context.Background(), m); err != nil && !errors.As(err, &te) {
				t.Fatalf("render failed without a *templates.Error: %v", err)
			}
		}
	})
}
