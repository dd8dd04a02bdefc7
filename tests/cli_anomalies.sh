#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# End-to-end `segmint anomalies`: a planted outlier is flagged by every
# detector, the model file round-trips to identical scores, results do not
# depend on --threads, and bad inputs fail with the location named.
set -u
segmint=${1:?path of the segmint binary}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
check() { # description, then a command that must succeed
  local what=$1; shift
  if ! "$@"; then echo "FAIL: $what"; fail=1; fi
}

# 400 rows of 3 roughly normal features (sum of 4 uniforms from a fixed LCG,
# so the file is the same with any awk), row 200 planted far away. Labels:
# three clusters by row index; row 200 belongs to cluster 2.
awk 'BEGIN {
  s = 12345; print "spend,visits,basket"
  for (i = 0; i < 400; i++) {
    line = ""
    for (j = 0; j < 3; j++) {
      v = 0
      for (k = 0; k < 4; k++) { s = (s * 1103515245 + 12345) % 2147483648; v += s / 2147483648 }
      v = (v - 2) * 1.7
      if (i == 200) v = (j == 1) ? -9 : 9
      line = line (j ? "," : "") sprintf("%.6f", v)
    }
    print line
  } }' > "$tmp/m.csv"
awk 'BEGIN { print "label"; for (i = 0; i < 400; i++) print i % 3 }' > "$tmp/labels.csv"

# The row with the highest score in a row,score,... CSV.
top_row() { awk -F, 'NR > 1 && (best == "" || $2 > best) { best = $2; row = $1 } END { print row }' "$1"; }
flag_of() { awk -F, -v r="$2" 'NR > 1 && $1 == r { print $3 }' "$1"; }

"$segmint" anomalies --matrix "$tmp/m.csv" --out "$tmp/if.csv" --contamination 0.01 \
  --model-out "$tmp/forest.model" --seed 7 --quiet
check "iforest exits 0" test $? -eq 0
check "iforest header" test "$(head -1 "$tmp/if.csv")" = "row,score,flag"
check "one line per row" test "$(wc -l < "$tmp/if.csv")" -eq 401
check "planted row has the top iforest score" test "$(top_row "$tmp/if.csv")" = 200
check "planted row flagged" test "$(flag_of "$tmp/if.csv" 200)" = 1
check "contamination 0.01 flags 4 of 400" test "$(awk -F, 'NR > 1 { s += $3 } END { print s }' "$tmp/if.csv")" -eq 4
check "scores in (0, 1]" awk -F, 'NR > 1 && !($2 > 0 && $2 <= 1) { exit 1 }' "$tmp/if.csv"

# The saved forest scores the same data to the same bytes; so do other thread counts.
"$segmint" anomalies --matrix "$tmp/m.csv" --model-in "$tmp/forest.model" --out "$tmp/again.csv" \
  --contamination 0.01 --quiet
check "model round trip gives identical results" cmp -s "$tmp/if.csv" "$tmp/again.csv"
for t in 1 3; do
  "$segmint" anomalies --matrix "$tmp/m.csv" --seed 7 --threads $t --contamination 0.01 \
    --out "$tmp/t$t.csv" --quiet
  check "threads $t gives identical results" cmp -s "$tmp/if.csv" "$tmp/t$t.csv"
done

# A damaged model file is refused, naming the file.
cp "$tmp/forest.model" "$tmp/bad.model"
printf '\x55' | dd of="$tmp/bad.model" bs=1 seek=100 conv=notrunc 2>/dev/null
"$segmint" anomalies --matrix "$tmp/m.csv" --model-in "$tmp/bad.model" --quiet 2> "$tmp/err"
check "corrupted model exits 1" test $? -eq 1
check "corrupted model error names the file" grep -q "bad.model" "$tmp/err"
check "corrupted model error says why" grep -q "checksum" "$tmp/err"
head -c 20 "$tmp/forest.model" > "$tmp/short.model"
"$segmint" anomalies --matrix "$tmp/m.csv" --model-in "$tmp/short.model" --quiet 2> /dev/null
check "truncated model exits 1" test $? -eq 1

# The other detectors, and all of them together.
"$segmint" anomalies --matrix "$tmp/m.csv" --method mahalanobis --out "$tmp/mcd.csv" --quiet
check "mahalanobis: planted row on top" test "$(top_row "$tmp/mcd.csv")" = 200
check "mahalanobis: planted row flagged (default chi2 cut)" test "$(flag_of "$tmp/mcd.csv" 200)" = 1
"$segmint" anomalies --matrix "$tmp/m.csv" --method centroid --labels "$tmp/labels.csv" \
  --out "$tmp/cen.csv" --quiet
check "centroid: planted row on top" test "$(top_row "$tmp/cen.csv")" = 200
check "centroid: planted row flagged" test "$(flag_of "$tmp/cen.csv" 200)" = 1
"$segmint" anomalies --matrix "$tmp/m.csv" --method all --labels "$tmp/labels.csv" \
  --out "$tmp/all.jsonl" --quiet
check "all: JSONL row for the planted row lists every detector" \
  grep -q '"row":200,.*"flag":1,"detector":"iforest+mahalanobis+centroid"' "$tmp/all.jsonl"
check "all: one JSON object per row" test "$(grep -c '^{"row":' "$tmp/all.jsonl")" -eq 400

# --centers: distances to given centres in the matrix's units. One column
# 20, 30, ..., 70, 220 with centre 70: distances 50 40 30 20 10 0 150, median
# 30, MAD 20, so row 6 scores 120 / (1.4826 * 20) = 4.0469, row 0 20 / 29.652 =
# 0.6745, row 5 -30 / 29.652 = -1.0117.
printf 'spend\n20\n30\n40\n50\n60\n70\n220\n' > "$tmp/one.csv"
printf 'label\n0\n0\n0\n0\n0\n0\n0\n' > "$tmp/one_labels.csv"
printf 'spend\n70\n' > "$tmp/one_centre.csv"
score_of() { awk -F, -v r="$2" 'NR > 1 && $1 == r { print $2 }' "$1"; }
near() { awk -v a="$1" -v b="$2" 'BEGIN { d = a - b; exit !(d < 1e-4 && d > -1e-4) }'; }
"$segmint" anomalies --matrix "$tmp/one.csv" --method centroid --labels "$tmp/one_labels.csv" \
  --centers "$tmp/one_centre.csv" --out "$tmp/one_cen.csv" --quiet
check "--centers: row 6 scores 4.0469" near "$(score_of "$tmp/one_cen.csv" 6)" 4.0469
check "--centers: row 0 scores 0.6745" near "$(score_of "$tmp/one_cen.csv" 0)" 0.6745
check "--centers: row 5 scores -1.0117" near "$(score_of "$tmp/one_cen.csv" 5)" -1.0117
check "--centers: only row 6 flagged" test "$(awk -F, 'NR > 1 && $3 == 1 { print $1 }' "$tmp/one_cen.csv")" = 6
"$segmint" anomalies --matrix "$tmp/one.csv" --method centroid --centers "$tmp/one_centre.csv" 2> /dev/null
check "--centers without --labels is a usage error" test $? -eq 2
printf 'label\n0\n0\n0\n0\n0\n0\n1\n' > "$tmp/two_labels.csv"
"$segmint" anomalies --matrix "$tmp/one.csv" --method centroid --labels "$tmp/two_labels.csv" \
  --centers "$tmp/one_centre.csv" --quiet 2> "$tmp/err"
check "one centre for two labels exits 1" test $? -eq 1
check "too few centres: the error names the file" grep -q "one_centre.csv: expected a row for each label 0..1" "$tmp/err"

# The summary names the planted row and its unusual features in input units.
"$segmint" anomalies --matrix "$tmp/m.csv" --top 1 > "$tmp/summary.txt"
check "summary lists the planted row first" grep -q "1. row 200 " "$tmp/summary.txt"
check "summary shows the feature value and robust z" grep -q "visits = -9 (z -" "$tmp/summary.txt"

# Refusals: existing output, bad contamination, NaN in the matrix, missing labels.
"$segmint" anomalies --matrix "$tmp/m.csv" --out "$tmp/if.csv" --quiet 2> "$tmp/err"
check "existing output refused without --force" test $? -eq 1
"$segmint" anomalies --matrix "$tmp/m.csv" --out "$tmp/if.csv" --force --quiet
check "--force overwrites" test $? -eq 0
"$segmint" anomalies --matrix "$tmp/m.csv" --contamination 0.6 2> "$tmp/err"
check "contamination 0.6 is a usage error" test $? -eq 2
check "contamination error names the option" grep -q -- "--contamination" "$tmp/err"
"$segmint" anomalies --matrix "$tmp/m.csv" --contamination 0 2> /dev/null
check "contamination 0 is a usage error" test $? -eq 2
sed '5s/^[^,]*,/nan,/' "$tmp/m.csv" > "$tmp/nan.csv"
"$segmint" anomalies --matrix "$tmp/nan.csv" --quiet 2> "$tmp/err"
check "NaN input exits 1" test $? -eq 1
check "NaN error names line 5 column 1" grep -q "nan.csv:5:1" "$tmp/err"
"$segmint" anomalies --matrix "$tmp/m.csv" --method centroid 2> /dev/null
check "centroid without labels is a usage error" test $? -eq 2
head -3 "$tmp/m.csv" > "$tmp/two.csv"
"$segmint" anomalies --matrix "$tmp/two.csv" --quiet --out "$tmp/two_out.csv"
check "n = 2 (< psi) works" test "$(wc -l < "$tmp/two_out.csv")" -eq 3

# --- a store: features built from transactions, purchases against each customer's
# history, the run recorded. The generator plants huge orders (200-500 units of an
# expensive item) and purchase bursts; its truth file names those customers.
"$segmint" gen --customers 1500 --seed 11 --anomaly-rate 0.02 --out "$tmp/tx.csv" --quiet
"$segmint" import --store "$tmp/store" "$tmp/tx.csv" --quiet
check "import exits 0" test $? -eq 0
"$segmint" anomalies --store "$tmp/store" --method all --contamination 0.02 --out "$tmp/store.csv" --quiet
check "store run exits 0" test $? -eq 0
check "store header" test "$(head -1 "$tmp/store.csv")" = \
  "customer_id,score,flag,detector,iforest_score,iforest_flag,mahalanobis_score,mahalanobis_flag,transaction_score,transaction_flag"
customers=$(awk -F, 'NR > 1' "$tmp/tx.truth.csv" | wc -l)
check "one row per customer with a purchase" test "$(($(wc -l < "$tmp/store.csv") - 1))" -le "$customers"
check "the run is stored" grep -q "anomalies" <("$segmint" runs --store "$tmp/store")
# With the default cut (robust z of log amount or size > 3.5), the planted huge
# orders of customers with at least 5 purchase invoices (fewer: not judged, by
# --min-history) are flagged purchases; a customer with only a handful of very
# uneven invoices may escape, so 80% are required.
"$segmint" anomalies --store "$tmp/store" --no-store --method transactions --tx-out "$tmp/flagged_tx.csv" --quiet
awk -F, 'NR > 1 && $5 == "huge_order" { print $1 }' "$tmp/tx.truth.csv" | sort > "$tmp/huge.txt"
awk -F, 'NR > 1 && $1 !~ /^C/ { print $2 "," $1 }' "$tmp/tx.csv" | sort -u | cut -d, -f1 | uniq -c |
  awk '$1 >= 5 { print $2 }' | sort > "$tmp/judged.txt"
comm -12 "$tmp/huge.txt" "$tmp/judged.txt" > "$tmp/expect.txt"
cut -d, -f1 "$tmp/flagged_tx.csv" | sort -u > "$tmp/got.txt"
check "planted huge orders exist in the data" test "$(wc -l < "$tmp/expect.txt")" -ge 3
found=$(comm -12 "$tmp/expect.txt" "$tmp/got.txt" | wc -l)
check "judged planted huge orders are flagged purchases ($found of $(wc -l < "$tmp/expect.txt"))" \
  test "$((found * 5))" -ge "$(( $(wc -l < "$tmp/expect.txt") * 4 ))"
check "flagged purchases carry customer, time, basket, its invoice and amount" \
  test "$(head -1 "$tmp/flagged_tx.csv")" = "customer_id,time,basket,basket_key,amount,items,amount_z,items_z,score"
# Every flagged purchase's basket_key is an invoice of that customer in the input.
awk -F, 'NR > 1 { print $2 "," $1 }' "$tmp/tx.csv" | sort -u > "$tmp/invoices.txt"
awk -F, 'NR > 1 { print $1 "," $4 }' "$tmp/flagged_tx.csv" | sort -u > "$tmp/flagged_invoices.txt"
check "flagged purchases have invoice keys" test "$(wc -l < "$tmp/flagged_invoices.txt")" -ge 3
check "each flagged basket_key is the customer's own invoice" \
  test -z "$(comm -23 "$tmp/flagged_invoices.txt" "$tmp/invoices.txt")"
# The Isolation Forest puts the planted huge orders (extreme monetary features)
# in its top 2%; bursts are subtler and not required.
hits=$(awk -F, 'NR > 1 && $6 == 1 { print $1 }' "$tmp/store.csv" | sort | comm -12 - "$tmp/huge.txt" | wc -l)
check "iforest flags at least 80% of the planted huge orders ($hits of $(wc -l < "$tmp/huge.txt"))" \
  test "$((hits * 5))" -ge "$(( $(wc -l < "$tmp/huge.txt") * 4 ))"
"$segmint" anomalies --store "$tmp/store" --no-store --method transactions --out "$tmp/st1.csv" --threads 1 --quiet
"$segmint" anomalies --store "$tmp/store" --no-store --method transactions --out "$tmp/st3.csv" --threads 3 --quiet
check "store results identical for 1 and 3 threads" cmp -s "$tmp/st1.csv" "$tmp/st3.csv"
"$segmint" anomalies --matrix "$tmp/m.csv" --method transactions 2> /dev/null
check "transactions without a store is a usage error" test $? -eq 2

# --- a four-customer store, by hand. c1 buys for 10, 11, 12, 10, 11, 12 and then
# 500 (invoice INV-9000). On log(1 + amount) its median is log 12 and its MAD
# log(13/12), so INV-9000 scores log(501/12) / (1.4826 log(13/12)) = 31.45; the
# others at most 0.73. With 4 customers and 8 features there are too few rows for
# a covariance (MCD needs n >= d + 2 = 10): --method all skips mahalanobis.
cat > "$tmp/small.csv" <<'EOF'
customer,invoice,item,quantity,price,time
c1,INV-1001,A,1,10.00,2021-01-01T10:00:00Z
c1,INV-1002,A,1,11.00,2021-01-08T10:00:00Z
c1,INV-1003,A,1,12.00,2021-01-15T10:00:00Z
c1,INV-1004,A,1,10.00,2021-01-22T10:00:00Z
c1,INV-1005,A,1,11.00,2021-01-29T10:00:00Z
c1,INV-1006,A,1,12.00,2021-02-05T10:00:00Z
c1,INV-9000,A,1,500.00,2021-02-12T10:00:00Z
c2,INV-2001,B,2,5.00,2021-01-03T10:00:00Z
c2,INV-2002,B,1,5.00,2021-02-03T10:00:00Z
c3,INV-3001,A,3,10.00,2021-01-05T10:00:00Z
c4,INV-4001,B,1,7.50,2021-01-09T10:00:00Z
EOF
"$segmint" import --store "$tmp/small" "$tmp/small.csv" --quiet
"$segmint" anomalies --store "$tmp/small" --method all --out "$tmp/small_all.csv" \
  --tx-out "$tmp/small_tx.csv" --quiet 2> "$tmp/err"
check "all on 4 customers exits 0" test $? -eq 0
check "all on 4 customers warns once, naming mahalanobis and why" \
  test "$(cat "$tmp/err")" = "segmint: warning: --method all: mahalanobis skipped: n_samples=4 should be >= n_features + 2 = 10 for a covariance"
check "skipped mahalanobis: its columns are empty" \
  awk -F, 'NR == 1 && ($7 != "mahalanobis_score" || $8 != "mahalanobis_flag") { exit 1 }
           NR > 1 && ($7 != "" || $8 != "") { exit 1 }' "$tmp/small_all.csv"
check "skipped mahalanobis: one row per customer" test "$(wc -l < "$tmp/small_all.csv")" -eq 5
# basket 6: baskets are numbered in input order and INV-9000 is the seventh.
check "the planted purchase is the only flagged one, with its invoice key" \
  test "$(cut -d, -f1-6 "$tmp/small_tx.csv")" = "$(printf 'customer_id,time,basket,basket_key,amount,items\nc1,2021-02-12T10:00:00Z,6,INV-9000,500,1')"
check "its score is log(501/12) / (1.4826 log(13/12)) = 31.45" \
  near "$(awk -F, 'NR == 2 { print $9 }' "$tmp/small_tx.csv")" 31.44563
"$segmint" anomalies --store "$tmp/small" --method transactions --no-store --tx-out "$tmp/small_tx.jsonl" --quiet
check "JSONL flagged purchases carry basket_key" \
  grep -q '^{"customer_id":"c1","time":"2021-02-12T10:00:00Z","basket":6,"basket_key":"INV-9000","amount":500,' \
  "$tmp/small_tx.jsonl"
"$segmint" anomalies --store "$tmp/small" --method all --no-store --out "$tmp/small_all.jsonl" --quiet 2> /dev/null
check "JSONL: skipped detector's values are null" \
  grep -q '"mahalanobis_score":null,"mahalanobis_flag":null' "$tmp/small_all.jsonl"
"$segmint" anomalies --store "$tmp/small" --method mahalanobis --no-store --quiet 2> "$tmp/err"
check "mahalanobis asked for alone on 4 customers still fails" test $? -eq 1
check "and says why" grep -q "n_samples=4 should be >= n_features + 2 = 10" "$tmp/err"
check "the stored run records the skip" \
  grep -q '"name":"mahalanobis","skipped":"n_samples=4' <("$segmint" runs --store "$tmp/small" --run latest)

# --- --kmeans-run: distances to the k-means centre as the run measured them. Seven
# customers with one purchase each of 20, 30, ..., 70, 220; k-means on
# monetary_total alone, unscaled, k = 1: centre 70, distances 50 40 30 20 10 0
# 150, so (as for --centers above) k7 scores 4.0469, k1 0.6745, k6 -1.0117.
{
  echo "customer,invoice,item,quantity,price,time"
  i=1
  for a in 20 30 40 50 60 70 220; do echo "k$i,INV-$i,A,1,$a.00,2021-03-0${i}T12:00:00Z"; i=$((i + 1)); done
} > "$tmp/km.csv"
"$segmint" import --store "$tmp/km" "$tmp/km.csv" --quiet
"$segmint" features --store "$tmp/km" --quiet
"$segmint" kmeans --store "$tmp/km" --columns monetary_total --scale none -k 1 --quiet
check "k-means run stored" test $? -eq 0
"$segmint" anomalies --store "$tmp/km" --method centroid --kmeans-run latest --out "$tmp/km_cen.csv" \
  > "$tmp/km_summary.txt"
check "--kmeans-run exits 0" test $? -eq 0
check "--kmeans-run: k7 scores 4.0469" near "$(score_of "$tmp/km_cen.csv" k7)" 4.0469
check "--kmeans-run: k1 scores 0.6745" near "$(score_of "$tmp/km_cen.csv" k1)" 0.6745
check "--kmeans-run: k6 scores -1.0117" near "$(score_of "$tmp/km_cen.csv" k6)" -1.0117
check "--kmeans-run: only k7 flagged" test "$(awk -F, 'NR > 1 && $3 == 1 { print $1 }' "$tmp/km_cen.csv")" = k7
check "the summary says whose centres" grep -q "centres: k-means run 1's" "$tmp/km_summary.txt"
# Without it the centre is the segment's mean of all eight standardised features:
# another number, and the summary says so.
"$segmint" anomalies --store "$tmp/km" --method centroid --segments-run 1 --no-store \
  --out "$tmp/km_seg.csv" > "$tmp/km_summary.txt"
check "--segments-run measures elsewhere" test "$(score_of "$tmp/km_seg.csv" k7)" != "$(score_of "$tmp/km_cen.csv" k7)"
check "--segments-run summary says segment means" grep -q "centres: segment means" "$tmp/km_summary.txt"
"$segmint" anomalies --store "$tmp/km" --method all --kmeans-run 1 --no-store --out "$tmp/km_all.csv" --quiet 2> /dev/null
check "all with --kmeans-run includes centroid" \
  test "$(awk -F, 'NR == 1 { print $9 } NR > 1 && $1 == "k7" { print $9 }' "$tmp/km_all.csv")" = \
  "$(printf 'centroid_score\n%s' "$(score_of "$tmp/km_cen.csv" k7)")"
"$segmint" anomalies --store "$tmp/km" --method centroid --kmeans-run 2 --no-store --quiet 2> "$tmp/err"
check "--kmeans-run of an anomalies run exits 1" test $? -eq 1
check "and names the run's kind" grep -q "run 2 is of kind 'anomalies'" "$tmp/err"
"$segmint" anomalies --store "$tmp/km" --method centroid --kmeans-run 1 --segments-run 1 --no-store 2> /dev/null
check "--kmeans-run with --segments-run is a usage error" test $? -eq 2

exit $fail
