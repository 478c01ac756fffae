#!/usr/bin/env bash
# Drives Vault servers on loopback with integrated (Raft) storage, for the
# e2e HA and crash tests and for trying failover by hand.
#
#   raft-cluster.sh up DIR N PLUGIN_DIR   start N nodes, init, unseal, join; writes DIR/cluster.env
#                                         (DIR must not hold a cluster already)
#   raft-cluster.sh kill DIR I [SIGNAL]   stop node I (default SIGKILL)
#   raft-cluster.sh start DIR I           start node I again and unseal it
#   raft-cluster.sh leader DIR            print the index of the active node
#   raft-cluster.sh down DIR              stop every node
#
# DIR/cluster.env holds VAULT_TOKEN, UNSEAL_KEY and ADDR_<i> for each node.
# Node I logs to DIR/node<I>.log. One key share: this is a test rig.
set -euo pipefail
trap 'echo "raft-cluster.sh: line $LINENO failed (exit $?)" >&2' ERR

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VAULT=${VAULT_BIN:-$("$here/vault.sh")}
cmd=${1:?usage: raft-cluster.sh up|kill|start|leader|down DIR ...}
dir=${2:?DIR}
mkdir -p "$dir"

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# free_port prints a port P with P and P+1 unused and not among $taken. The
# range stays below the kernel's ephemeral range (32768 and up), so an
# outgoing connection made by a concurrent test cannot hold the port.
taken=" "
free_port() {
  local p
  while :; do
    p=$((12000 + RANDOM % 20000))
    case "$taken" in *" $p "* | *" $((p + 1)) "* | *" $((p - 1)) "*) continue ;; esac
    port_free "$p" && port_free $((p + 1)) && { echo "$p"; return; }
  done
}
env_get() { sed -n "s/^$1=//p" "$dir/cluster.env"; }

node_env() { VAULT_ADDR="$(env_get "ADDR_$1")" VAULT_TOKEN="$(env_get VAULT_TOKEN)" "${@:2}"; }

wait_up() { # wait until node $1 answers (sealed or not)
  local addr; addr=$(env_get "ADDR_$1")
  for _ in $(seq 1 200); do
    code=$(VAULT_ADDR=$addr "$VAULT" status >/dev/null 2>&1; echo $?)
    [ "$code" = 0 ] || [ "$code" = 2 ] && return 0
    sleep 0.1
  done
  echo "node $1 did not come up; see $dir/node$1.log" >&2; return 1
}

start_node() { # start node $1 from its config
  local i=$1
  nohup "$VAULT" server -config="$dir/node$i.hcl" >>"$dir/node$i.log" 2>&1 &
  echo $! >"$dir/node$i.pid"
  wait_up "$i"
}

unseal() {
  local i=$1
  for _ in $(seq 1 50); do
    VAULT_ADDR=$(env_get "ADDR_$i") "$VAULT" operator unseal "$(env_get UNSEAL_KEY)" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  echo "node $i could not be unsealed" >&2; return 1
}

wait_unsealed() {
  local i=$1
  for _ in $(seq 1 300); do
    VAULT_ADDR=$(env_get "ADDR_$i") "$VAULT" status >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "node $i is still sealed" >&2; return 1
}

case "$cmd" in
up)
  n=${3:?N}; plugins=${4:?PLUGIN_DIR}
  [ ! -e "$dir/cluster.env" ] || { echo "$dir already holds a cluster: run 'down' and remove it first" >&2; exit 1; }
  : >"$dir/cluster.env"
  declare -a api cluster
  for i in $(seq 1 "$n"); do
    p=$(free_port); api[$i]=$p; cluster[$i]=$((p + 1)); taken="$taken$p $((p + 1)) "
    echo "ADDR_$i=http://127.0.0.1:$p" >>"$dir/cluster.env"
  done
  for i in $(seq 1 "$n"); do
    mkdir -p "$dir/node$i/data"
    {
      echo "storage \"raft\" {"
      echo "  path    = \"$dir/node$i/data\""
      echo "  node_id = \"node$i\""
      for j in $(seq 1 "$n"); do
        [ "$j" = "$i" ] && continue
        echo "  retry_join { leader_api_addr = \"http://127.0.0.1:${api[$j]}\" }"
      done
      echo "}"
      echo "listener \"tcp\" {"
      echo "  address         = \"127.0.0.1:${api[$i]}\""
      echo "  cluster_address = \"127.0.0.1:${cluster[$i]}\""
      echo "  tls_disable     = true"
      echo "}"
      echo "api_addr         = \"http://127.0.0.1:${api[$i]}\""
      echo "cluster_addr     = \"http://127.0.0.1:${cluster[$i]}\""
      echo "plugin_directory = \"$plugins\""
      echo "disable_mlock    = true"
      echo "log_level        = \"debug\""
    } >"$dir/node$i.hcl"
  done
  start_node 1
  init=""
  for _ in $(seq 1 50); do
    init=$(VAULT_ADDR=$(env_get ADDR_1) "$VAULT" operator init -key-shares=1 -key-threshold=1 -format=json | tr -d ' \n') && break
    sleep 0.2
  done
  key=$(echo "$init" | sed -n 's/.*"unseal_keys_b64":\["\([^"]*\)".*/\1/p')
  token=$(echo "$init" | sed -n 's/.*"root_token":"\([^"]*\)".*/\1/p')
  [ -n "$key" ] && [ -n "$token" ] || { echo "could not read the init output" >&2; exit 1; }
  { echo "UNSEAL_KEY=$key"; echo "VAULT_TOKEN=$token"; } >>"$dir/cluster.env"
  unseal 1; wait_unsealed 1
  # Autopilot promotes a joined node to voter once it has been stable this
  # long (10s by default); 2s keeps tests quick.
  for _ in $(seq 1 100); do
    node_env 1 "$VAULT" operator raft autopilot set-config -server-stabilization-time=2s >/dev/null 2>&1 && break
    sleep 0.2
  done
  for i in $(seq 2 "$n"); do
    start_node "$i"
    # A joining node can be unsealed once retry_join has reached the leader.
    unseal "$i"; wait_unsealed "$i"
  done
  # Failover needs a quorum of voters: wait until every node votes.
  # list-peers fails while leadership settles: count that as no voters yet
  # rather than letting set -e end the script.
  voters=0
  for _ in $(seq 1 300); do
    voters=$({ node_env 1 "$VAULT" operator raft list-peers -format=json 2>/dev/null || true; } | tr -d ' \n' | { grep -o '"voter":true' || true; } | wc -l)
    [ "$voters" -ge "$n" ] && break
    sleep 0.2
  done
  [ "$voters" -ge "$n" ] || { echo "only $voters of $n nodes became voters" >&2; exit 1; }
  echo "cluster of $n up; env in $dir/cluster.env" >&2
  ;;
kill)
  i=${3:?I}; sig=${4:-KILL}
  pid=$(cat "$dir/node$i.pid")
  kill -s "$sig" "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  ;;
start)
  i=${3:?I}
  start_node "$i"; unseal "$i"; wait_unsealed "$i"
  ;;
leader)
  n=$(grep -c '^ADDR_' "$dir/cluster.env")
  for i in $(seq 1 "$n"); do
    out=$(VAULT_ADDR=$(env_get "ADDR_$i") "$VAULT" status -format=json 2>/dev/null | tr -d ' \n' || true)
    case "$out" in *'"is_self":true'*) echo "$i"; exit 0 ;; esac
  done
  exit 1
  ;;
down)
  for f in "$dir"/node*.pid; do
    [ -f "$f" ] || continue
    kill "$(cat "$f")" 2>/dev/null || true
  done
  sleep 1
  for f in "$dir"/node*.pid; do
    [ -f "$f" ] || continue
    kill -9 "$(cat "$f")" 2>/dev/null || true
  done
  ;;
*) echo "unknown command $cmd" >&2; exit 2 ;;
esac
