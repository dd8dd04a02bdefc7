#!/usr/bin/env bash
# End to end: a hand-written log -> import -> features (CSV and .npy) -> info,
# with the feature values computed by hand in the comments below.
set -euo pipefail
segmint=${1:?segmint binary}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# c1: 2023-01-01 invoice A: 2 x 5.00 + 1 x 3.00; 2023-01-11 invoice B: 1 x 3.00;
#     2023-01-13 return of one 5.00 item (C invoice)
# c2: 2023-01-06 one purchase 2.50
# as of 2023-01-31: c1 recency 20, frequency 2, net 18.00 - 5.00 = 11.00 (gross 16.00),
# mean 5.50, tenure 30, inter-purchase 10, 2 distinct items, return rate 5/16;
# c2 recency 25, frequency 1, 2.50, tenure 25, inter-purchase 25 (single purchase)
cat > "$tmp/log.csv" <<'CSV'
invoice,customer_id,time,item,description,quantity,price
A,c1,2023-01-01T00:00:00Z,I1,MUG,2,5.00
A,c1,2023-01-01T00:00:00Z,I2,JAR,1,3.00
B,c1,2023-01-11T00:00:00Z,I2,JAR,1,3.00
CB,c1,2023-01-13T00:00:00Z,I1,MUG,-1,5.00
D,c2,2023-01-06T00:00:00Z,I3,BOX,1,2.50
CSV
"$segmint" import --store "$tmp/store" "$tmp/log.csv" > /dev/null
"$segmint" features --store "$tmp/store" --as-of 2023-01-31 --out "$tmp/f.csv" --quiet
expected='customer_id,recency_days,frequency,monetary_total,monetary_mean,tenure_days,interpurchase_days,distinct_items,return_rate
c1,20,2,11,5.5,30,10,2,0.3125
c2,25,1,2.5,2.5,25,25,1,0'
[ "$(cat "$tmp/f.csv")" = "$expected" ] || { cat "$tmp/f.csv"; fail "feature values differ from the hand computation"; }

# refuses to overwrite without --force; .npy output is float32 2 x 8
if "$segmint" features --store "$tmp/store" --as-of 2023-01-31 --out "$tmp/f.csv" --quiet 2>"$tmp/err"; then
  fail "overwrote an existing output without --force"
fi
grep -q "already exists" "$tmp/err" || fail "no 'already exists' message: $(cat "$tmp/err")"
"$segmint" features --store "$tmp/store" --as-of 2023-01-31 --out "$tmp/f.npy" --no-store --quiet
head -c 128 "$tmp/f.npy" | grep -q "'descr': '<f4', 'fortran_order': False, 'shape': (2, 8)" || fail "bad .npy header"
[ "$(stat -c %s "$tmp/f.npy")" -eq $((128 + 2 * 8 * 4)) ] || fail ".npy size"

# bad dates and missing stores are named
"$segmint" features --store "$tmp/store" --as-of 2023-02-30 2>"$tmp/err" && fail "accepted Feb 30"
grep -q -- "--as-of" "$tmp/err" || fail "the bad --as-of is not named"
"$segmint" features --store "$tmp/nowhere" 2>"$tmp/err" && fail "opened a missing store"
grep -q "$tmp/nowhere" "$tmp/err" || fail "missing store path not named: $(cat "$tmp/err")"

# the stored feature set is counted by info
"$segmint" info --store "$tmp/store" --json | grep -q '"feature_sets":1' || fail "info does not count the feature set"
echo "cli_features: ok"
