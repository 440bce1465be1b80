// Package apitest checks real HTTP exchanges against the published
// contract (api/openapi.yaml) with kin-openapi. Tests of every layer use
// it, so "the response matches the spec" means one thing everywhere.
package apitest

import (
	"context"
	"fmt"
	"net/http"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/sealpost/sealpost/api"
)

// Contract is the loaded, validated spec and a router over it.
type Contract struct {
	Doc    *openapi3.T
	router routers.Router
}

// Load returns the contract, loaded and validated once per process.
var Load = sync.OnceValues(func() (*Contract, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(api.Spec)
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		return nil, fmt.Errorf("validate: %w", err)
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("router: %w", err)
	}
	return &Contract{Doc: doc, router: router}, nil
})

// Schema returns the named component schema, or nil.
func (c *Contract) Schema(name string) *openapi3.Schema {
	ref := c.Doc.Components.Schemas[name]
	if ref == nil {
		return nil
	}
	return ref.Value
}

// Check validates a response to req against the operation the contract
// declares for req: the status must be documented and the headers and
// body must match its schema.
func (c *Contract) Check(req *http.Request, status int, header http.Header, body []byte) error {
	route, params, err := c.router.FindRoute(req)
	if err != nil {
		return fmt.Errorf("no operation in the contract: %w", err)
	}
	opts := &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{
			Request: req, PathParams: params, Route: route, Options: opts,
		},
		Status:  status,
		Header:  header,
		Options: opts,
	}
	in.SetBodyBytes(body)
	return openapi3filter.ValidateResponse(context.Background(), in)
}
