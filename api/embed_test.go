package api

import (
	"encoding/json"
	"testing"
)

func TestJSONMatchesYAML(t *testing.T) {
	t.Parallel()
	raw, err := JSON()
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		OpenAPI string                               `json:"openapi"`
		Paths   map[string]map[string]map[string]any `json:"paths"`
		Comps   struct {
			SecuritySchemes map[string]struct {
				Flows map[string]struct {
					Scopes map[string]string `json:"scopes"`
				} `json:"flows"`
			} `json:"securitySchemes"`
		} `json:"components"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("JSON form does not parse: %v", err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi = %q, want 3.1.0", doc.OpenAPI)
	}
	op := doc.Paths["/v1/audit-events"]["get"]
	if op["operationId"] != "listAuditEvents" || op["x-sealpost-scope"] != "audit:read" {
		t.Errorf("listAuditEvents lost in conversion: %v", op)
	}
	if _, ok := op["responses"].(map[string]any)["200"]; !ok {
		t.Error("response code 200 lost in conversion")
	}
	// The password flow's scopes are a YAML alias of the client
	// credentials flow's: the conversion must resolve it.
	pw := doc.Comps.SecuritySchemes["oauth2"].Flows["password"].Scopes
	if _, ok := pw["audit:read"]; !ok {
		t.Errorf("password flow scopes = %v, want the aliased set", pw)
	}
}

func TestYAMLToJSONFormatsNonStringKeys(t *testing.T) {
	t.Parallel()
	got, err := yamlToJSON([]byte("responses:\n  200: {description: ok}\n  true: x\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"responses":{"200":{"description":"ok"},"true":"x"}}`
	if string(got) != want {
		t.Errorf("got %s, want %s", got, want)
	}
}
