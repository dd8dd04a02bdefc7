#!/usr/bin/env bash
# The real UCI Online Retail file end to end (skipped when $SEGMINT_DATA does
# not hold it): every input row accounted for, one assignment row per
# customer with an id (4,372), and the run's record agreeing with info.
set -euo pipefail
segmint=${1:?segmint binary}
data=${SEGMINT_DATA:-${SEGMINT_DATA_DEFAULT:-}}
file=$data/online_retail/online_retail.csv
if [ ! -r "$file" ]; then
  echo "SKIP: $file not readable (set SEGMINT_DATA)"
  exit 0
fi
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
json_number() { grep -o "\"$2\":[0-9]*" "$1" | head -1 | cut -d: -f2; }

"$segmint" import --store "$tmp/store" --format online-retail "$file" > /dev/null 2> "$tmp/rejects.txt"
"$segmint" info --store "$tmp/store" --json > "$tmp/info.json"
rows=$(json_number "$tmp/info.json" rows)
rejected=$(json_number "$tmp/info.json" rejected)
[ $((rows + rejected)) -eq 541909 ] || fail "rows $rows + rejected $rejected != 541,909 input rows"
[ "$(json_number "$tmp/info.json" customers)" -eq 4372 ] || fail "customers"

"$segmint" run --store "$tmp/store" --out "$tmp/seg.csv" --json > "$tmp/run.json"
[ "$(tail -n +2 "$tmp/seg.csv" | wc -l)" -eq 4372 ] || fail "expected 4,372 rows"
[ "$(json_number "$tmp/run.json" customers)" -eq 4372 ] || fail "summary customers"
# 33 customers have only cancellations: a row each, but no segment or scores
graded=$(json_number "$tmp/run.json" graded)
[ "$graded" -eq 4339 ] || fail "graded $graded, expected 4,339 customers with a purchase"
[ "$(tail -n +2 "$tmp/seg.csv" | awk -F, '$2 == ""' | wc -l)" -eq 33 ] || fail "unsegmented rows"
# the stored record's counts match info's
"$segmint" export --store "$tmp/store" --out "$tmp/export.csv"
cmp -s "$tmp/export.csv" "$tmp/seg.csv" || fail "export differs from the run's output"
"$segmint" runs --store "$tmp/store" --run latest > "$tmp/record.json"
for key in rows rejected customers baskets items; do
  [ "$(json_number "$tmp/record.json" "$key")" = "$(json_number "$tmp/info.json" "$key")" ] ||
    fail "run record $key $(json_number "$tmp/record.json" "$key") != info's"
done
echo "cli_online_retail: ok"
