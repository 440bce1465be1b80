// Package api holds Sealpost's published HTTP contract, api/openapi.yaml
// (OpenAPI 3.1), embedded in the binary. The YAML file is the source of
// truth for /v1; the HTTP layer serves it and its tests validate real
// responses against it. This package owns no behaviour beyond exposing the
// document in its YAML and JSON forms.
package api

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"sync"

	yaml "go.yaml.in/yaml/v3"
)

// Spec is the OpenAPI document as written, in YAML. Callers must not
// modify it.
//
//go:embed openapi.yaml
var Spec []byte

// specJSON converts Spec once; the input is fixed at build time, so the
// result (or the error) is the same for every caller.
var specJSON = sync.OnceValues(func() ([]byte, error) { return yamlToJSON(Spec) })

// JSON returns the OpenAPI document converted to JSON, for clients that do
// not read YAML. The conversion runs once; callers must not modify the
// returned slice. An error means the embedded YAML is invalid, which the
// package tests rule out.
func JSON() ([]byte, error) { return specJSON() }

// yamlToJSON decodes a YAML document (resolving anchors and aliases) and
// encodes it as JSON.
func yamlToJSON(doc []byte) ([]byte, error) {
	var v any
	if err := yaml.Unmarshal(doc, &v); err != nil {
		return nil, fmt.Errorf("parse OpenAPI YAML: %w", err)
	}
	v, err := jsonValue(v)
	if err != nil {
		return nil, err
	}
	out, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode OpenAPI JSON: %w", err)
	}
	return out, nil
}

// jsonValue rewrites what the YAML decoder produced into values
// encoding/json accepts: mappings with non-string keys (such as an
// unquoted 200 response code) get their keys formatted as strings.
func jsonValue(v any) (any, error) {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			c, err := jsonValue(e)
			if err != nil {
				return nil, err
			}
			t[k] = c
		}
		return t, nil
	case map[any]any:
		m := make(map[string]any, len(t))
		for k, e := range t {
			key := fmt.Sprint(k)
			if _, dup := m[key]; dup {
				return nil, fmt.Errorf("OpenAPI YAML: key %q appears twice once formatted as a string", key)
			}
			c, err := jsonValue(e)
			if err != nil {
				return nil, err
			}
			m[key] = c
		}
		return m, nil
	case []any:
		for i, e := range t {
			c, err := jsonValue(e)
			if err != nil {
				return nil, err
			}
			t[i] = c
		}
		return t, nil
	default:
		return v, nil
	}
}
