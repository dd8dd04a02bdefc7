#!/usr/bin/env bash
# End to end: segmint kmeans on a hand-made CSV and the same matrix as .npy,
# with answers worked out by hand in the comments; -k auto on three blobs;
# thread-count independence; the errors users hit; and a store run.
set -euo pipefail
segmint=${1:?segmint binary}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# Two blobs of four points. From the centers (0,0) and (10,10) the first
# assignment is already final: centers (0.5,0.5) and (10.5,10.5), every point
# 0.5^2 + 0.5^2 = 0.5 from its center, inertia 8 * 0.5 = 4.
cat > "$tmp/two.csv" <<'CSV'
spend,visits
0,0
0,1
1,0
1,1
10,10
10,11
11,10
11,11
CSV
printf 'spend,visits\n0,0\n10,10\n' > "$tmp/init.csv"
"$segmint" kmeans --matrix "$tmp/two.csv" --init "$tmp/init.csv" --labels "$tmp/l.csv" \
  --centroids "$tmp/c.csv" > "$tmp/out.txt"
[ "$(tr '\n' ' ' < "$tmp/l.csv")" = "label 0 0 0 0 1 1 1 1 " ] || fail "labels: $(cat "$tmp/l.csv")"
[ "$(cat "$tmp/c.csv")" = "$(printf 'spend,visits\n0.5,0.5\n10.5,10.5')" ] || fail "centroids: $(cat "$tmp/c.csv")"
grep -q "inertia 4," "$tmp/out.txt" || fail "summary inertia: $(cat "$tmp/out.txt")"
grep -qE "^  1 +4 +50.00%" "$tmp/out.txt" || fail "summary sizes: $(cat "$tmp/out.txt")"

# The same matrix as .npy float32 (little-endian bytes of 0, 1, 10, 11), and
# .npy outputs: int32 labels of shape (8,), float32 centers of shape (2, 2).
f0='\x00\x00\x00\x00'; f1='\x00\x00\x80\x3f'; f10='\x00\x00\x20\x41'; f11='\x00\x00\x30\x41'
header="{'descr': '<f4', 'fortran_order': False, 'shape': (8, 2), }"
while [ $(( (10 + ${#header} + 1) % 64 )) -ne 0 ]; do header="$header "; done
{
  printf '\x93NUMPY\x01\x00'
  printf "\\x$(printf %02x $(( (${#header} + 1) % 256 )))\\x$(printf %02x $(( (${#header} + 1) / 256 )))"
  printf '%s\n' "$header"
  printf "$f0$f0$f0$f1$f1$f0$f1$f1$f10$f10$f10$f11$f11$f10$f11$f11"
} > "$tmp/two.npy"
"$segmint" kmeans --matrix "$tmp/two.npy" --init "$tmp/init.csv" --labels "$tmp/l.npy" \
  --centroids "$tmp/c.npy" --centroids-original "$tmp/co.csv" --quiet
head -c 128 "$tmp/l.npy" | grep -q "'descr': '<i4', 'fortran_order': False, 'shape': (8,)" || fail "labels .npy header"
[ "$(tail -c 32 "$tmp/l.npy" | od -An -tx1 | tr -d ' \n')" = \
  "0000000000000000000000000000000001000000010000000100000001000000" ] || fail "labels .npy values"
head -c 128 "$tmp/c.npy" | grep -q "'shape': (2, 2)" || fail "centroids .npy header"
# 0.5 = 0x3f000000, 10.5 = 0x41280000
[ "$(tail -c 16 "$tmp/c.npy" | od -An -tx1 | tr -d ' \n')" = "0000003f0000003f0000284100002841" ] || fail "centroids .npy values"
# no header in a .npy: columns are named x1, x2
[ "$(head -1 "$tmp/co.csv")" = "x1,x2" ] || fail "default column names: $(head -1 "$tmp/co.csv")"

# Scaling: z-score of spend over the 8 rows has mean 5.5 and population sd 5.0249..;
# centers come back in original units with --centroids-original.
"$segmint" kmeans --matrix "$tmp/two.csv" -k 2 --scale zscore --seed 3 --centroids-original "$tmp/co2.csv" \
  --labels "$tmp/l2.csv" --quiet
# (float32 round trip through the scaling: within 1e-6 relative)
awk -F, 'NR > 1 { ok += (($1 - 0.5)^2 + ($2 - 0.5)^2 < 1e-10) + (($1 - 10.5)^2 + ($2 - 10.5)^2 < 1e-8) }
         END { exit ok == 2 ? 0 : 1 }' "$tmp/co2.csv" || fail "original-unit centers: $(cat "$tmp/co2.csv")"

# -k auto on three well separated blobs picks 3 by silhouette.
{
  echo "x,y"
  for i in $(seq 0 29); do
    echo "$((i % 3)),$((i % 5))"
    echo "$((40 + i % 3)),$((i % 5))"
    echo "$((i % 3)),$((60 + i % 5))"
  done
} > "$tmp/three.csv"
"$segmint" kmeans --matrix "$tmp/three.csv" -k auto --k-range 2..6 > "$tmp/auto.txt"
grep -qE "^ +3 .*<- chosen" "$tmp/auto.txt" || fail "-k auto did not choose 3: $(cat "$tmp/auto.txt")"
grep -q "k=3," "$tmp/auto.txt" || fail "final fit is not k=3"

# Same seed, any thread count: identical bytes.
for alg in lloyd hamerly elkan yinyang minibatch; do
  "$segmint" kmeans --matrix "$tmp/three.csv" -k 4 --algorithm $alg --seed 9 --threads 1 --labels "$tmp/t1.npy" \
    --centroids "$tmp/c1.npy" --quiet --force
  "$segmint" kmeans --matrix "$tmp/three.csv" -k 4 --algorithm $alg --seed 9 --threads 3 --labels "$tmp/t3.npy" \
    --centroids "$tmp/c3.npy" --quiet --force
  cmp -s "$tmp/t1.npy" "$tmp/t3.npy" || fail "$alg labels depend on --threads"
  cmp -s "$tmp/c1.npy" "$tmp/c3.npy" || fail "$alg centroids depend on --threads"
done

# Errors name what is wrong.
expect_error() { # expected-text, then the command's arguments
  local want=$1; shift
  if "$segmint" kmeans "$@" > /dev/null 2> "$tmp/err"; then fail "accepted: $*"; fi
  grep -qF -- "$want" "$tmp/err" || fail "message for '$*' lacks '$want': $(cat "$tmp/err")"
}
expect_error "n_samples=8 should be >= n_clusters=9." --matrix "$tmp/two.csv" -k 9
printf 'spend,visits\n1,2\n3,inf\n' > "$tmp/inf.csv"
expect_error "inf.csv:3:2" --matrix "$tmp/inf.csv" -k 1
expect_error "no column named \"price\"" --matrix "$tmp/two.csv" -k 2 --columns spend,price
expect_error "initial centers have 1 columns" --matrix "$tmp/two.csv" --init <(printf 'a\n1\n2\n') 
expect_error "-k 3 but the file holds 2 initial centers" --matrix "$tmp/two.csv" -k 3 --init "$tmp/init.csv"
expect_error "log1p needs values > -1" --matrix <(printf 'a\n-2\n1\n') -k 1 --log1p a
expect_error "already exists" --matrix "$tmp/two.csv" -k 2 --labels "$tmp/l.csv"
expect_error "give exactly one of --matrix FILE or --store DIR" -k 2
expect_error "--algorithm: 'fast'" --matrix "$tmp/two.csv" -k 2 --algorithm fast

# A store: two customers (as in cli_features.sh), k = 2 puts each alone;
# the run is stored with one assignment row per customer.
cat > "$tmp/log.csv" <<'CSV'
invoice,customer_id,time,item,description,quantity,price
A,c1,2023-01-01T00:00:00Z,I1,MUG,2,5.00
B,c1,2023-01-11T00:00:00Z,I2,JAR,1,3.00
D,c2,2023-01-06T00:00:00Z,I3,BOX,1,2.50
E,c3,2023-01-07T00:00:00Z,I3,BOX,1,2.50
CSV
"$segmint" import --store "$tmp/store" "$tmp/log.csv" > /dev/null
"$segmint" features --store "$tmp/store" --as-of 2023-01-31 --quiet
"$segmint" kmeans --store "$tmp/store" -k 2 --columns frequency,monetary_total > "$tmp/store.txt"
grep -q "stored as run 1" "$tmp/store.txt" || fail "no run stored: $(cat "$tmp/store.txt")"
grep -q "profile" "$tmp/store.txt" || fail "no segment profile"
"$segmint" export --store "$tmp/store" --format csv > "$tmp/run.csv"
# c2 and c3 are identical (one 2.50 basket): same segment; c1 alone
s1=$(awk -F, '$1=="c1"{print $2}' "$tmp/run.csv"); s2=$(awk -F, '$1=="c2"{print $2}' "$tmp/run.csv")
s3=$(awk -F, '$1=="c3"{print $2}' "$tmp/run.csv")
[ -n "$s1" ] && [ "$s2" = "$s3" ] && [ "$s1" != "$s2" ] || fail "stored segments: $(cat "$tmp/run.csv")"
echo "cli_kmeans: ok"
