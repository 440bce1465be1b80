package cli_test

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// roleScopes mirrors the roles the foundation migration seeds.
var roleScopes = map[string][]string{
	"owner":    {"admin", "audit:read", "messages:send", "messages:read", "contacts:write", "workflows:write"},
	"admin":    {"admin", "audit:read", "messages:send", "messages:read", "contacts:write", "workflows:write"},
	"sender":   {"messages:send", "messages:read"},
	"marketer": {"contacts:write", "workflows:write", "messages:read"},
	"auditor":  {"audit:read"},
}

type operation struct {
	method, path, scope string
	hasBody             bool
}

// v1Operations lists every /v1 operation of the published contract, so
// the matrix below grows with the API by itself.
func v1Operations(t *testing.T, api *apiClient) []operation {
	t.Helper()
	var ops []operation
	for path, item := range api.contract.Doc.Paths.Map() {
		if !strings.HasPrefix(path, "/v1/") {
			continue
		}
		for method, op := range item.Operations() {
			scope, _ := op.Extensions["x-sealpost-scope"].(string)
			if scope == "" {
				t.Errorf("%s %s declares no x-sealpost-scope", method, path)
			}
			ops = append(ops, operation{method: method, path: path, scope: scope, hasBody: op.RequestBody != nil})
		}
	}
	sort.Slice(ops, func(i, j int) bool { return ops[i].method+ops[i].path < ops[j].method+ops[j].path })
	return ops
}

var pathParam = regexp.MustCompile(`\{[a-z_]+\}`)

// probe calls op with harmless arguments: path ids that do not exist (or
// the given one) and an empty JSON object as body, so an authorized call
// answers 2xx, 404 or 422 and changes nothing.
func probe(api *apiClient, op operation, key, id string) int {
	path := pathParam.ReplaceAllString(op.path, id)
	if op.hasBody {
		status, _, _ := api.call(op.method, path, key, "application/json", "{}")
		return status
	}
	status, _, _ := api.call(op.method, path, key, "", "")
	return status
}

func TestRoleRouteMatrixFromTheContract(t *testing.T) {
	srv := serveBootstrapped(t)
	env, owner, api := srv.env, srv.owner, srv.api
	ops := v1Operations(t, api)
	if len(ops) == 0 {
		t.Fatal("the contract has no /v1 operations")
	}

	keys := map[string]string{}
	for role := range roleScopes {
		status, c := api.create(owner, fmt.Sprintf(`{"name":"matrix-%s","role":%q}`, role, role))
		if status != 201 {
			t.Fatalf("create %s client: %d", role, status)
		}
		keys[role] = c.ID + ":" + c.Secret
	}
	for _, op := range ops {
		for role, scopes := range roleScopes {
			allowed := op.scope == "authenticated" || slices.Contains(scopes, op.scope) || slices.Contains(scopes, "admin")
			status := probe(api, op, keys[role], "spc_doesnotexist")
			switch {
			case allowed && (status == 401 || status == 403):
				t.Errorf("%s %s as %s: %d, want access (scope %s)", op.method, op.path, role, status, op.scope)
			case !allowed && status != 403:
				t.Errorf("%s %s as %s: %d, want 403 (scope %s)", op.method, op.path, role, status, op.scope)
			}
		}
		if status := probe(api, op, "", "spc_doesnotexist"); status != 401 {
			t.Errorf("%s %s without credentials: %d, want 401", op.method, op.path, status)
		}
	}

	// Every operation that names a resource, called by another account's
	// owner with this account's resource id, finds nothing.
	code, bout, berr := run(t, env, "admin", "bootstrap", "--force", "--account-name", "Other", "--owner-email", "o@other.example")
	if code != 0 {
		t.Fatalf("second account: %s %s", bout, berr)
	}
	credsB := parseCreds(bout)
	ownerB := credsB["client_id"] + ":" + credsB["client_secret"]
	victim := strings.Split(keys["auditor"], ":")[0]
	for _, op := range ops {
		if !strings.Contains(op.path, "{") {
			continue
		}
		if status := probe(api, op, ownerB, victim); status != 404 {
			t.Errorf("%s %s with another account's id: %d, want 404", op.method, op.path, status)
		}
	}
	if status, _, _ := api.call("GET", "/v1/api-clients", keys["auditor"], "", ""); status != 403 {
		t.Errorf("victim client changed by the cross-account probes: %d", status)
	}
}
