#!/usr/bin/env bash
# Prints the path of a Vault server binary to use:
#   1. $VAULT_BIN if set;
#   2. `vault` on PATH if it is 1.15 or newer;
#   3. otherwise the pinned Vault (scripts/vault/go.mod) built from the Go module
#      proxy into a cache outside the repo, reused afterwards.
# Progress goes to stderr; only the path goes to stdout.
set -euo pipefail

if [ -n "${VAULT_BIN:-}" ]; then
  [ -x "$VAULT_BIN" ] || { echo "vault.sh: VAULT_BIN=$VAULT_BIN is not executable" >&2; exit 1; }
  echo "$VAULT_BIN"; exit 0
fi

if command -v vault >/dev/null 2>&1; then
  v=$(vault version 2>/dev/null | sed -n 's/^Vault v\([0-9]*\)\.\([0-9]*\).*/\1 \2/p')
  if [ -n "$v" ]; then
    set -- $v
    if [ "$1" -gt 1 ] || { [ "$1" -eq 1 ] && [ "$2" -ge 15 ]; }; then
      command -v vault; exit 0
    fi
  fi
fi

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
version=$(sed -n 's/^require github.com\/hashicorp\/vault \(v[^ ]*\)$/\1/p' "$here/vault/go.mod")
cache="${XDG_CACHE_HOME:-$HOME/.cache}/vault-plugin-secrets-thirdparty"
bin="$cache/vault-$version"
if [ -x "$bin" ]; then echo "$bin"; exit 0; fi

mkdir -p "$cache"
echo "vault.sh: building Vault $version into $cache (about 8 minutes on 2 cores, once)" >&2
tmp="$bin.tmp.$$"
trap 'rm -f "$tmp"' EXIT
(cd "$here/vault" && go build -trimpath -ldflags "-s -w" -o "$tmp" github.com/hashicorp/vault) >&2
mv "$tmp" "$bin"
echo "$bin"
