#!/usr/bin/env bash
# make dev: a Vault dev server on loopback with the plugin registered and
# mounted at thirdparty/, the demo provider, a provider and a dynamic role,
# and a working `vault read thirdparty/creds/demo-dynamic`. Runs until
# Ctrl-C, then stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=${VERSION:-v0.2.0}
VAULT_PORT=${VAULT_PORT:-8200}
DEMO_PORT=${DEMO_PORT:-8300}
PLUGIN=vault-plugin-secrets-thirdparty
BIN=$PWD/bin

[ -x "$BIN/plugins/$PLUGIN" ] && [ -x "$BIN/demo-provider" ] || make build
VAULT=$(scripts/vault.sh)

run=$(mktemp -d "${TMPDIR:-/tmp}/thirdparty-dev.XXXXXX")
pids=()
cleanup() {
  trap - EXIT INT TERM
  echo
  echo "Stopping (logs were in $run)..."
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
# Ctrl-C (or a TERM) is how this is meant to end: stop everything, exit 0.
trap cleanup EXIT
trap 'cleanup; exit 0' INT TERM

free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free "$VAULT_PORT" || { echo "port $VAULT_PORT is taken; set VAULT_PORT" >&2; exit 1; }
free "$DEMO_PORT" || { echo "port $DEMO_PORT is taken; set DEMO_PORT" >&2; exit 1; }

ADMIN_KEY="demoadm_$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
"$BIN/demo-provider" -listen "127.0.0.1:$DEMO_PORT" -admin-key "$ADMIN_KEY" >"$run/demo-provider.log" 2>&1 &
pids+=($!)

echo "plugin_directory = \"$BIN/plugins\"" >"$run/vault.hcl"
"$VAULT" server -dev -dev-root-token-id=root -dev-listen-address="127.0.0.1:$VAULT_PORT" \
  -config="$run/vault.hcl" >"$run/vault.log" 2>&1 &
pids+=($!)

export VAULT_ADDR="http://127.0.0.1:$VAULT_PORT" VAULT_TOKEN=root
for i in $(seq 1 100); do
  "$VAULT" status >/dev/null 2>&1 && break
  sleep 0.2
  [ "$i" = 100 ] && { echo "Vault did not start; see $run/vault.log" >&2; exit 1; }
done
for i in $(seq 1 50); do
  curl -fsS "http://127.0.0.1:$DEMO_PORT/healthz" >/dev/null 2>&1 && break
  sleep 0.2
done

# Show each command as the user would type it (the admin key masked), then run it.
show() { local line="vault ${*:2}"; echo "\$ ${line//$ADMIN_KEY/<admin key>}"; "$@"; }
show "$VAULT" plugin register -sha256="$(sha256sum "$BIN/plugins/$PLUGIN" | cut -d' ' -f1)" -version="$VERSION" secret "$PLUGIN"
show "$VAULT" secrets enable -path=thirdparty -plugin-version="$VERSION" "$PLUGIN"
show "$VAULT" write thirdparty/providers/demo type=demo base_url="http://127.0.0.1:$DEMO_PORT" admin_key="$ADMIN_KEY"
show "$VAULT" write thirdparty/roles/demo-dynamic provider=demo mode=dynamic ttl=1h max_ttl=24h
show "$VAULT" read thirdparty/creds/demo-dynamic

cat <<MSG

Vault dev server with the plugin mounted at thirdparty/:

    export VAULT_ADDR=$VAULT_ADDR
    export VAULT_TOKEN=root
    $VAULT read thirdparty/creds/demo-dynamic

Demo provider: http://127.0.0.1:$DEMO_PORT (inspect keys: curl http://127.0.0.1:$DEMO_PORT/_demo/keys)
Logs: $run
Press Ctrl-C to stop.
MSG
wait
