# The two commands of the README: `make dev` and `make test`.
SHELL      := /bin/bash
VERSION    ?= v0.1.0
MODULE     := github.com/thirdparty-vault/vault-plugin-secrets-thirdparty
LDFLAGS    := -s -w -X $(MODULE)/internal/version.Version=$(VERSION)
BIN        := bin
PLUGIN     := vault-plugin-secrets-thirdparty
E2E_TIMEOUT ?= 75m

.PHONY: all build plugin demo-provider vault dev test unit e2e fmt vet clean

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

unit:
	go test -race -count=1 ./...

# The e2e suite starts its own Vault and demo provider on free loopback ports.
e2e:
	VAULT_BIN="$$(scripts/vault.sh)" go test -tags e2e -count=1 -timeout $(E2E_TIMEOUT) -v ./e2e/ 2>&1 | tee $(BIN)/e2e.log | grep -E '^(=== RUN|--- |PASS|FAIL|ok|panic)|_test.go'; exit $${PIPESTATUS[0]}

fmt:
	gofmt -l -w $$(git ls-files '*.go')

vet:
	go vet ./...
	go vet -tags e2e ./e2e/

clean:
	rm -rf $(BIN)
