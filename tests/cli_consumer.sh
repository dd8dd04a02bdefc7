#!/usr/bin/env bash
# Another program reads segmint's assignments table with liblmdb alone
# (tests/consumer/read_assignments.c) and sees what `segmint export` sees.
set -euo pipefail
segmint=${1:?segmint binary}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

cc -std=c11 -Wall -Wextra -Werror "$here/consumer/read_assignments.c" -o "$tmp/read_assignments" \
   $(pkg-config --cflags --libs lmdb)
"$segmint" gen --customers 800 --seed 5 --out "$tmp/log.csv" --quiet
"$segmint" import --store "$tmp/store" "$tmp/log.csv" > /dev/null
"$segmint" run --store "$tmp/store" -k 4 --quiet
"$segmint" export --store "$tmp/store" --out "$tmp/export.csv"
"$tmp/read_assignments" "$tmp/store" > "$tmp/consumer.csv"
# same customers, segments and tiers; historic CLV to the cent
awk -F, 'NR > 1 {printf "%s,%s,%s,%.2f\n", $1, $2, $10, $12}' "$tmp/export.csv" > "$tmp/expected.csv"
tail -n +2 "$tmp/consumer.csv" > "$tmp/got.csv"
[ "$(wc -l < "$tmp/got.csv")" -eq 800 ] || fail "consumer read $(wc -l < "$tmp/got.csv") rows"
diff -q "$tmp/expected.csv" "$tmp/got.csv" > /dev/null || { diff "$tmp/expected.csv" "$tmp/got.csv" | head; fail "consumer disagrees with export"; }
echo "cli_consumer: ok"
