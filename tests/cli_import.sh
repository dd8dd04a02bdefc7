#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# End-to-end test of `segmint import` and `segmint info`: exit codes, the
# first-20 rejection lines and the rejects file, --json keys, --strict,
# duplicate refusal, paths named in errors (S6), a symlinked store file (S1)
# and Ctrl-C during an import (nothing half-written).
set -u
segmint=${1:?path of the segmint binary}
base=${SEGMINT_BINARY_DIR:-/tmp}/Testing/tmp
mkdir -p "$base"
work=$(mktemp -d "$base/cli-import-XXXXXX")
trap 'rm -rf "$work"' EXIT
fail=0
check() { # check DESCRIPTION COMMAND...
  local what=$1; shift
  if ! "$@"; then echo "FAIL: $what"; fail=1; fi
}
json_get() { # json_get FILE KEY
  /usr/bin/python3 -c 'import json,sys; v=json.load(open(sys.argv[1]))[sys.argv[2]]; print("null" if v is None else v)' "$1" "$2"
}

store=$work/store
cat > "$work/shop.csv" <<'EOF'
CustomerID,InvoiceNo,StockCode,Description,Quantity,UnitPrice,InvoiceDate
c1,i1,A,"Apple, red",2,1.50,2021-01-02T10:00:00Z
c1,i1,B,Banana,1,0.25,2021-01-02T10:00:00Z
c2,i2,A,Apple,3,1.50,2021-01-01 09:00:00
c1,i3,A,Apple,-1,1.50,2021-01-05T00:00:00+01:00
,i4,B,Banana,4,0.25,2021-01-03
c2,i5,C,Cherry,1,2.00,1609632000
EOF

"$segmint" import --help > "$work/help.txt"; check "import --help exits 0" test $? -eq 0
check "help lists the formats" grep -q "online-retail" "$work/help.txt"

"$segmint" import --store "$store" "$work/shop.csv" > "$work/out.txt" 2> "$work/err.txt"
check "import exits 0" test $? -eq 0
check "summary names the rows" grep -q "imported 6 rows from 1 file" "$work/out.txt"

"$segmint" info --store "$store" --json > "$work/info.json"
check "info --json exits 0" test $? -eq 0
if [ -x /usr/bin/python3 ]; then
  check "json rows" test "$(json_get "$work/info.json" rows)" = 6
  check "json rejected" test "$(json_get "$work/info.json" rejected)" = 0
  check "json customers" test "$(json_get "$work/info.json" customers)" = 2
  check "json items" test "$(json_get "$work/info.json" items)" = 3
  check "json baskets" test "$(json_get "$work/info.json" baskets)" = 5
  check "json first_time" test "$(json_get "$work/info.json" first_time)" = 2021-01-01T09:00:00Z
  check "json last_time" test "$(json_get "$work/info.json" last_time)" = 2021-01-04T23:00:00Z
  check "json schema_version" test "$(json_get "$work/info.json" schema_version)" = 1
  check "json total_amount" test "$(json_get "$work/info.json" total_amount)" = 9.25
else
  check "json keys present" grep -q '"rows":6,"rejected":0,"customers":2,"items":3,"baskets":5' "$work/info.json"
fi
"$segmint" info --store "$store" > "$work/info.txt"
check "info text" grep -q "^customers *2$" "$work/info.txt"

# the same file again: refused, exit 1, the file named
"$segmint" import --store "$store" "$work/shop.csv" > /dev/null 2> "$work/err.txt"
check "duplicate import exits 1" test $? -eq 1
check "duplicate named" grep -q "shop.csv: was already imported" "$work/err.txt"

# 25 bad rows: 20 on stderr, then a count, all 25 in the rejects file
{
  echo "customer,time,amount"
  for i in $(seq 1 25); do echo "c$i,not-a-date,1"; done
  echo "ok,2021-01-01,1"
} > "$work/bad.csv"
"$segmint" import --store "$store" "$work/bad.csv" > "$work/out.txt" 2> "$work/err.txt"
check "import with rejects exits 0" test $? -eq 0
check "20 rejections shown" test "$(grep -c '^segmint: rejected: ' "$work/err.txt")" -eq 20
check "first rejection located" grep -q "bad.csv:2:2: field \"time\": \"not-a-date\" is not a date" "$work/err.txt"
check "the rest counted" grep -q "and 5 more rejected rows: all are listed in $store/rejects-0002.txt" "$work/err.txt"
check "rejects file complete" test "$(wc -l < "$store/rejects-0002.txt")" -eq 25
"$segmint" info --store "$store" --json > "$work/info.json"
if [ -x /usr/bin/python3 ]; then
  check "rejected counted by info" test "$(json_get "$work/info.json" rejected)" = 25
  check "rows add up" test "$(json_get "$work/info.json" rows)" = 7
fi

# --strict: first bad row aborts, nothing written
sed 's/^c1,not-a-date/c1,also-bad/' "$work/bad.csv" > "$work/bad2.csv"
"$segmint" import --strict --store "$store" "$work/bad2.csv" > /dev/null 2> "$work/err.txt"
check "strict exits 1" test $? -eq 1
check "strict names the row" grep -q "bad2.csv:2:2: field \"time\"" "$work/err.txt"
"$segmint" info --store "$store" --json > "$work/info2.json"
check "strict wrote nothing" cmp -s "$work/info.json" "$work/info2.json"

# usage errors exit 2
"$segmint" import "$work/shop.csv" 2> /dev/null; check "no --store exits 2" test $? -eq 2
"$segmint" import --store "$store" --format xml "$work/shop.csv" 2> /dev/null; check "bad format exits 2" test $? -eq 2
"$segmint" import --store "$store" --money-scale 0 "$work/shop.csv" 2> /dev/null; check "bad scale exits 2" test $? -eq 2
"$segmint" info 2> /dev/null; check "info without --store exits 2" test $? -eq 2

# a first import that fails leaves no store behind
"$segmint" import --store "$work/new-store" "$work/absent.csv" 2> /dev/null
check "failed first import exits 1" test $? -eq 1
check "failed first import leaves no store" test ! -e "$work/new-store"

# missing and unusable paths are named (S6, S1)
"$segmint" import --store "$store" "$work/absent.csv" 2> "$work/err.txt"
check "missing input exits 1" test $? -eq 1
check "missing input named" grep -q "$work/absent.csv: cannot open" "$work/err.txt"
"$segmint" info --store "$work/nowhere" 2> "$work/err.txt"
check "missing store exits 1" test $? -eq 1
check "missing store named" grep -q "$work/nowhere" "$work/err.txt"
mkdir -p "$work/linked"
: > "$work/target.mdb"
ln -s "$work/target.mdb" "$work/linked/data.mdb"
"$segmint" import --store "$work/linked" "$work/shop.csv" 2> "$work/err.txt"
check "symlinked data.mdb exits 1" test $? -eq 1
check "symlink refused" grep -q "symbolic link" "$work/err.txt"
check "symlink target untouched" test ! -s "$work/target.mdb"

# Ctrl-C during an import: exit 130 and the store unchanged, or (if it
# finished first) exit 0 with the rows in; never anything in between.
awk 'BEGIN { print "customer,basket,item,quantity,price,time";
             for (i = 0; i < 400000; i++) printf "c%d,b%d,i%d,1,1.00,%d\n", i % 5000, i / 3, i % 977, 1600000000 + i }' \
  > "$work/big.csv"
"$segmint" info --store "$store" --json > "$work/before.json"
"$segmint" import --quiet --store "$store" "$work/big.csv" 2> "$work/err.txt" &
pid=$!
sleep 0.3
kill -INT $pid 2> /dev/null
wait $pid
code=$?
"$segmint" info --store "$store" --json > "$work/after.json"
if [ $code -eq 130 ]; then
  check "interrupted import left the store unchanged" cmp -s "$work/before.json" "$work/after.json"
  check "interruption reported" grep -q "cancelled" "$work/err.txt"
else
  check "uninterrupted import succeeded" test $code -eq 0
fi
check "no temporary files left" test -z "$(ls -A "$store" | grep -v -E '^(data|lock)\.mdb$|^rejects-[0-9]+\.txt$')"

if [ $fail -eq 0 ]; then echo "cli_import: all checks passed"; fi
exit $fail
