# Developer shortcuts. CI runs .ci/run, which uses the same commands; the
# vulnerability check is one script (.ci/vulncheck) shared by both.

GO ?= go

.DEFAULT_GOAL := help
.PHONY: help run build test vet fmt-check vulncheck bench

help: ## list the targets
	@grep -E '^[a-z][a-z-]*:.*## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN { FS = ":.*## " } { printf "  make %-10s %s\n", $$1, $$2 }'

run: ## start the server (go run ./cmd/sealpost serve)
	$(GO) run ./cmd/sealpost serve

build: ## build bin/sealpost
	$(GO) build -o bin/sealpost ./cmd/sealpost

test: ## run the tests, as the README says (set SEALPOST_TEST_POSTGRES for PostgreSQL)
	$(GO) test ./...

vet: ## go vet
	$(GO) vet ./...

fmt-check: ## fail if a file is not gofmt-clean
	@out="$$(gofmt -l .)"; if [ -n "$$out" ]; then echo "needs gofmt -w:"; echo "$$out"; exit 1; fi

vulncheck: ## govulncheck against the offline vulnerability database (as CI)
	bash .ci/vulncheck

bench: ## run the benchmarks
	$(GO) test -run '^$$' -bench . ./bench/... ./internal/...
