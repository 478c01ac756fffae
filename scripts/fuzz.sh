#!/usr/bin/env bash
# Runs every native Go fuzz target of the module (found with `go test -list`)
# for DURATION each (default 5m), one after another, then prints per target
# the execs count and whether it crashed.
#
#   scripts/fuzz.sh [DURATION]          e.g. scripts/fuzz.sh 30s
#
# FUZZ_PARALLEL sets the fuzz workers per target (go test -parallel; default
# GOMAXPROCS). FUZZ_MATCH limits the run to targets whose "package.Target"
# matches this extended regexp. A crash leaves the failing input in the
# package's testdata/fuzz/<Target>/ (keep it: it then runs as a seed in
# `go test ./...`) and makes the script exit 1. Logs go to bin/fuzz/.
set -uo pipefail

duration=${1:-5m}
cd "$(dirname "$0")/.."
logdir=bin/fuzz
mkdir -p "$logdir"

# "package target" pairs: go test -list prints a package's names before
# its "ok <package>" line.
if ! listing=$(go test -run '^$' -list '^Fuzz' ./... 2>&1); then
	echo "$listing" >&2
	echo "fuzz.sh: listing the fuzz targets failed" >&2
	exit 2
fi
targets=$(awk '/^Fuzz/ { names[n++] = $1; next }
	/^ok[ \t]/ { for (i = 0; i < n; i++) print $2, names[i]; n = 0 }' <<<"$listing")
if [[ -n ${FUZZ_MATCH:-} ]]; then
	targets=$(while read -r pkg name; do
		if [[ "${pkg##*/}.$name" =~ $FUZZ_MATCH ]]; then echo "$pkg $name"; fi
	done <<<"$targets")
fi
if [[ -z $targets ]]; then
	echo "fuzz.sh: no fuzz targets found" >&2
	exit 2
fi
count=$(wc -l <<<"$targets")
echo "fuzzing $count targets for $duration each"

parallel=()
if [[ -n ${FUZZ_PARALLEL:-} ]]; then parallel=(-parallel "$FUZZ_PARALLEL"); fi

summary=()
crashed=0
while read -r pkg name; do
	short=${pkg#github.com/thirdparty-vault/vault-plugin-secrets-thirdparty/}
	log="$logdir/${short//\//_}.$name.log"
	echo "== $short $name"
	go test -run '^$' -fuzz "^$name\$" -fuzztime "$duration" "${parallel[@]}" "$pkg" >"$log" 2>&1
	rc=$?
	# The last progress line holds the total: "fuzz: elapsed: 5m0s, execs: 123 (…/sec), …".
	execs=$(grep -o 'execs: [0-9]*' "$log" | tail -n 1 | awk '{print $2}')
	if [[ $rc -eq 0 ]]; then
		result=ok
	else
		crashed=1
		input=$(grep -o 'testdata/fuzz/[^ ]*' "$log" | tail -n 1)
		result="CRASHED${input:+ (input: $short/$input)}; see $log"
		grep -E -m 5 '^\s+(--- FAIL|.*_test\.go:|.*\.go:[0-9]+:)' "$log" | sed 's/^/    /'
	fi
	summary+=("$(printf '%-28s %-26s %10s  %s' "$short" "$name" "${execs:-?}" "$result")")
done <<<"$targets"

echo
printf '%-28s %-26s %10s  %s\n' package target execs result
printf '%s\n' "${summary[@]}"
exit $crashed
