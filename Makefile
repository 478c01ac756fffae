# The two commands of the README: `make dev` and `make test`.
SHELL      := /bin/bash
VERSION    ?= v0.2.0
MODULE     := github.com/thirdparty-vault/vault-plugin-secrets-thirdparty
LDFLAGS    := -s -w -X $(MODULE)/internal/version.Version=$(VERSION)
BIN        := bin
PLUGIN     := vault-plugin-secrets-thirdparty
E2E_TIMEOUT ?= 75m

.PHONY: dashboard gobench storm all build plugin demo-provider vault dev test unit e2e fmt vet clean release bench

all: build

build: plugin demo-provider

plugin:
	go build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/plugins/$(PLUGIN) ./cmd/$(PLUGIN)

demo-provider:
	go build -trimpath -o $(BIN)/demo-provider ./cmd/demo-provider

# Prints the Vault binary to use, building the pinned one on first use.
vault:
	@scripts/vault.sh

# Vault dev server + plugin + demo provider, a working creds read, then wait.
dev: build
	VERSION=$(VERSION) scripts/dev.sh

test: unit e2e

# tools/promql is a module of its own (the Prometheus server module, whose
# PromQL parser it uses, stays out of the plugin's module graph).
unit:
	go test -race -count=1 ./...
	cd tools/promql && go test -count=1 ./...

# The e2e suite starts its own Vault and demo provider on free loopback ports.
e2e:
	mkdir -p $(BIN) && VAULT_BIN="$$(scripts/vault.sh)" go test -tags e2e -count=1 -timeout $(E2E_TIMEOUT) -v ./e2e/ 2>&1 | tee $(BIN)/e2e.log | grep -E '^(=== RUN|--- |PASS|FAIL|ok|panic)|_test.go'; exit $${PIPESTATUS[0]}

# The Grafana dashboard, defined as code in cmd/dashboard (Grafana Foundation
# SDK), written to docs/grafana/thirdparty.json; commit the result (a unit
# test fails when the committed file is stale).
dashboard:
	go run ./cmd/dashboard -o docs/grafana/thirdparty.json

fmt:
	gofmt -l -w $$(git ls-files '*.go')

vet:
	go vet ./...
	go vet -tags e2e ./e2e/
	cd tools/promql && go vet ./...

clean:
	rm -rf $(BIN)

# Release binaries of the plugin and the demo provider for every platform in
# dist/, named <cmd>_<version without v>_<os>_<arch>, plus dist/SHA256SUMS.
# Static (CGO_ENABLED=0), -trimpath, the version compiled in (the plugin
# reports it to Vault as its running version). Register a binary with
#   vault plugin register -sha256=<sum> -command=<file name> -version=$(VERSION) secret $(PLUGIN)
DIST      ?= dist
PLATFORMS ?= linux/amd64 linux/arm64 darwin/amd64 darwin/arm64

release:
	rm -rf $(DIST) && mkdir -p $(DIST)
	set -e; for p in $(PLATFORMS); do \
	  os=$${p%/*}; arch=$${p#*/}; \
	  for cmd in $(PLUGIN) demo-provider; do \
	    out=$(DIST)/$${cmd}_$(VERSION:v%=%)_$${os}_$${arch}; \
	    echo "go build $$out"; \
	    CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch go build -trimpath -ldflags "$(LDFLAGS)" -o $$out ./cmd/$$cmd; \
	  done; \
	done
	cd $(DIST) && sha256sum $(PLUGIN)_* demo-provider_* >SHA256SUMS && cat SHA256SUMS

# Load benchmark against a real Vault dev server and the demo provider (both
# started on free loopback ports): kv-v2 write/read, dual and dynamic creds
# reads, each beside its floor (cmd/bench-floor-plugin: an external plugin
# that does only the contract), and lease revokes at 1, 8 and 32 clients.
# Prints the table and rewrites the make-bench section of
# docs/performance.md. About 6 minutes.
BENCH_FLAGS ?=

bench: build
	go build -trimpath -o $(BIN)/bench ./cmd/bench
	go build -trimpath -o $(BIN)/plugins/bench-floor-plugin ./cmd/bench-floor-plugin
	$(BIN)/bench -plugin-version $(VERSION) $(BENCH_FLAGS)

# The rotation storm against the demo provider limited to 20 requests a second, full size:
# 1,000 dual roles due at the same minute, with max_requests_per_second=20 and unset
# (e2e/storm_test.go; `make test` runs it with 100 roles). About 15 minutes.
storm:
	VAULT_BIN="$$(scripts/vault.sh)" E2E_STORM_ROLES=1000 go test -tags e2e -count=1 -timeout 45m -run TestRotationStorm -v ./e2e/

# Go benchmarks of the rotation engine (idle roles, roles due at once).
gobench:
	go test -run XXX -bench . -benchtime 1x ./backend
