#!/bin/sh
# Entry point of the `vault` service of docker-compose.yml (POSIX sh: the
# image is Alpine-based). It
#   1. starts a Vault dev server whose plugin_directory holds the plugin,
#   2. registers the plugin with its sha256 and version and mounts it at
#      thirdparty/,
#   3. writes the provider `demo` (the demo-provider service) and the role
#      `demo-dynamic`, and checks that `vault read thirdparty/creds/demo-dynamic`
#      works (revoking that test lease),
#   4. creates $READY_FILE (the compose healthcheck) and keeps Vault running
#      until SIGTERM/SIGINT, which it passes on to Vault.
#
# Everything is an environment variable, so the same script runs outside a
# container (the e2e suite runs it against a local Vault and demo provider).
set -eu

VAULT=${VAULT:-vault}
PLUGIN_NAME=${PLUGIN_NAME:-vault-plugin-secrets-thirdparty}
PLUGIN_DIR=${PLUGIN_DIR:-/vault/plugins}
PLUGIN_VERSION=${PLUGIN_VERSION:?set PLUGIN_VERSION to the version compiled into the plugin}
MOUNT=${MOUNT:-thirdparty}
LISTEN=${VAULT_DEV_LISTEN_ADDRESS:-0.0.0.0:8200}
ROOT_TOKEN=${VAULT_DEV_ROOT_TOKEN_ID:-root}
DEMO_URL=${DEMO_URL:-http://demo-provider:8300}
DEMO_ADMIN_KEY=${DEMO_ADMIN_KEY:?set DEMO_ADMIN_KEY to the admin key of the demo provider}
READY_FILE=${READY_FILE:-/tmp/thirdparty-ready}
VAULT_LOG_LEVEL=${VAULT_LOG_LEVEL:-info}
# The CLI talks to the dev server over loopback, plain HTTP.
VAULT_ADDR=${VAULT_ADDR:-http://127.0.0.1:${LISTEN##*:}}
VAULT_TOKEN=$ROOT_TOKEN
export VAULT_ADDR VAULT_TOKEN

log() { echo "thirdparty: $*"; }

plugin_bin=$PLUGIN_DIR/$PLUGIN_NAME
[ -x "$plugin_bin" ] || { log "no executable plugin at $plugin_bin" >&2; exit 1; }
rm -f "$READY_FILE"

cfg=$(mktemp "${TMPDIR:-/tmp}/thirdparty-vault.XXXXXX")
printf 'plugin_directory = "%s"\n' "$PLUGIN_DIR" >"$cfg"

vault_pid=
cleanup() {
  if [ -n "$vault_pid" ] && kill -0 "$vault_pid" 2>/dev/null; then
    kill -TERM "$vault_pid" 2>/dev/null || true
    wait "$vault_pid" 2>/dev/null || true
  fi
  rm -f "$cfg" "$READY_FILE"
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

log "starting Vault (dev mode) on $LISTEN with plugin_directory $PLUGIN_DIR"
"$VAULT" server -dev -dev-root-token-id="$ROOT_TOKEN" -dev-listen-address="$LISTEN" \
  -config="$cfg" -log-level="$VAULT_LOG_LEVEL" &
vault_pid=$!

i=0
until "$VAULT" status >/dev/null 2>&1; do
  kill -0 "$vault_pid" 2>/dev/null || { log "Vault exited during start-up" >&2; exit 1; }
  i=$((i + 1))
  [ "$i" -le 120 ] || { log "Vault did not come up at $VAULT_ADDR" >&2; exit 1; }
  sleep 0.5
done

sha=$(sha256sum "$plugin_bin" | cut -d' ' -f1)
log "vault plugin register -sha256=$sha -version=$PLUGIN_VERSION secret $PLUGIN_NAME"
"$VAULT" plugin register -sha256="$sha" -version="$PLUGIN_VERSION" secret "$PLUGIN_NAME"
log "vault secrets enable -path=$MOUNT -plugin-version=$PLUGIN_VERSION $PLUGIN_NAME"
"$VAULT" secrets enable -path="$MOUNT" -plugin-version="$PLUGIN_VERSION" "$PLUGIN_NAME"

# The write checks the admin key against the demo provider, so it also waits
# for that service. The key goes through stdin, not the process list.
log "vault write $MOUNT/providers/demo type=demo base_url=$DEMO_URL admin_key=-"
i=0
until printf '%s' "$DEMO_ADMIN_KEY" |
  "$VAULT" write "$MOUNT/providers/demo" type=demo base_url="$DEMO_URL" admin_key=-; do
  i=$((i + 1))
  [ "$i" -le 30 ] || { log "could not configure the demo provider at $DEMO_URL" >&2; exit 1; }
  log "demo provider not ready, retrying"
  sleep 1
done

log "vault write $MOUNT/roles/demo-dynamic provider=demo mode=dynamic ttl=1h max_ttl=24h"
"$VAULT" write "$MOUNT/roles/demo-dynamic" provider=demo mode=dynamic ttl=1h max_ttl=24h

# Smoke test: one creds read, then its lease (and key) revoked again.
lease=$("$VAULT" read -field=lease_id "$MOUNT/creds/demo-dynamic")
"$VAULT" lease revoke "$lease" >/dev/null
log "vault read $MOUNT/creds/demo-dynamic works"

touch "$READY_FILE"
log "ready: VAULT_ADDR=$VAULT_ADDR VAULT_TOKEN=$ROOT_TOKEN vault read $MOUNT/creds/demo-dynamic"

# wait returns early when a trapped signal arrives; the trap then exits and
# cleanup stops Vault.
status=0
wait "$vault_pid" || status=$?
vault_pid=
log "Vault exited with status $status"
exit "$status"
