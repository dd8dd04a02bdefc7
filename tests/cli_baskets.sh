#!/usr/bin/env bash
# End-to-end `segmint baskets`: a hand-made FIMI file with known itemsets and
# rules, formats, errors, and the Groceries rule count when the data are present.
set -u
bin=${1:?path of the segmint binary}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail=0
check() { if [ "$2" != "$3" ]; then echo "FAIL $1: got [$2] want [$3]"; fail=1; else echo "ok $1"; fi; }

# a=1 b=2 c=3 d=4: {abc, ab, ac, bc, a, d}; at 2 baskets: a4 b3 c3 ab2 ac2 bc2
printf '1 2 3 \r\n1 2\n1 3\n2 3 3\n1\n4\n' > "$tmp/t.dat"
"$bin" baskets --fimi "$tmp/t.dat" --min-support 2 --itemsets "$tmp/sets.txt" --threads 2 > "$tmp/summary" || fail=1
check itemsets "$(sort "$tmp/sets.txt" | tr '\n' ';')" "1 #SUP: 4;1 2 #SUP: 2;1 3 #SUP: 2;2 #SUP: 3;2 3 #SUP: 2;3 #SUP: 3;"
check summary "$(sed 's/, [0-9.]* s$//' "$tmp/summary")" "baskets: 6 baskets (0 empty, 1 duplicate item collapsed), 6 itemsets, 0 rules"
"$bin" baskets --fimi "$tmp/t.dat" --min-support abs:2 --kind maximal --itemsets "$tmp/max.txt" --quiet > /dev/null
check maximal "$(sort "$tmp/max.txt" | tr '\n' ';')" "1 2 #SUP: 2;1 3 #SUP: 2;2 3 #SUP: 2;"
# fractions: 0.3 of 6 baskets = 1.8 -> 2
"$bin" baskets --fimi "$tmp/t.dat" --min-support 0.3 --json > "$tmp/j" || fail=1
check json "$(sed 's/"seconds":[0-9.]*/"seconds":S/' "$tmp/j")" '{"itemsets":6,"rules":0,"seconds":S,"empty_baskets":0,"duplicate_items":1}'
"$bin" baskets --fimi "$tmp/t.dat" --min-support 2 --rules "$tmp/rules.txt" --min-confidence 0.6 > /dev/null || fail=1
check rules "$(head -1 "$tmp/rules.txt")" "2 ==> 1 #SUP: 2 #CONF: 0.6666666666666666 #LIFT: 1"
check rule-count "$(wc -l < "$tmp/rules.txt")" "4"
"$bin" baskets --fimi "$tmp/t.dat" --min-support 2 --rules "$tmp/rules.csv" --min-confidence 0.6 > /dev/null || fail=1
check rules-csv "$(sed -n 2p "$tmp/rules.csv")" '{2},{1},2,0.3333333333333333,0.6666666666666666,1,0,1'
"$bin" baskets --fimi "$tmp/t.dat" --min-support 2 --itemsets "$tmp/sets.jsonl" > /dev/null || fail=1
check jsonl "$(grep -c '"items":\[' "$tmp/sets.jsonl")" "6"
"$bin" baskets --fimi "$tmp/t.dat" --min-support 2 --min-confidence 0.5 --recommend 2 --out "$tmp/recs.csv" > /dev/null || fail=1
check recs-header "$(head -1 "$tmp/recs.csv")" "customer,item,description,score,rule"
# basket 4 is {1}: 1 ==> 2 and 1 ==> 3 both score 0.5 x 1; ties by item
check recs-basket4 "$(grep '^4,' "$tmp/recs.csv" | cut -d, -f1-4 | tr '\n' ';')" "4,2,,0.5;4,3,,0.5;"

# errors: exit 2 with the option named; existing output refused
"$bin" baskets --fimi "$tmp/t.dat" --min-support 0 2> "$tmp/e"; check zero-support "$?" 2
"$bin" baskets --fimi "$tmp/t.dat" --min-support 1.5 2> "$tmp/e"; check big-fraction "$?" 2
grep -q -- "--min-support" "$tmp/e" || { echo "FAIL message names --min-support"; fail=1; }
"$bin" baskets --fimi "$tmp/t.dat" --min-support nan 2> /dev/null; check nan-support "$?" 2
"$bin" baskets --fimi "$tmp/t.dat" --min-support 2 --max-len 0 2> /dev/null; check max-len-0 "$?" 2
"$bin" baskets --fimi "$tmp/t.dat" --min-support 2 --rules x --min-confidence 1.5 2> /dev/null; check conf "$?" 2
"$bin" baskets --fimi "$tmp/t.dat" --min-support 2 --itemsets "$tmp/sets.txt" 2> /dev/null; check no-overwrite "$?" 1
printf '1 2\n3 x\n' > "$tmp/bad.dat"
"$bin" baskets --fimi "$tmp/bad.dat" --min-support 1 2> "$tmp/e"; check parse-error "$?" 1
grep -q "bad.dat:2:3" "$tmp/e" || { echo "FAIL parse error names file:line:column"; cat "$tmp/e"; fail=1; }
# output cap with its warning
"$bin" baskets --fimi "$tmp/t.dat" --min-support 1 --max-itemsets 3 --itemsets "$tmp/cap.txt" 2> "$tmp/w" > /dev/null
check cap-lines "$(wc -l < "$tmp/cap.txt")" "3"
grep -q "warning: more than 3 itemsets" "$tmp/w" || { echo "FAIL cap warning"; fail=1; }
# B8: empty baskets are kept and counted, duplicates collapsed and counted.
# {3,7} (one 7 dropped), {}, {3}, {3,7} (two 7s dropped): 4 baskets, so 0.6
# means 2.4 -> 3 baskets and only {3} (3 baskets) is frequent; were the empty
# basket dropped, 0.6 x 3 -> 2 would also keep {7} and {3,7}.
printf '7 3 7\n\n3\n7 7 7 3\n' > "$tmp/b8.dat"
"$bin" baskets --fimi "$tmp/b8.dat" --min-support 0.6 --quiet > "$tmp/summary" || fail=1
check b8-summary "$(sed 's/, [0-9.]* s$//' "$tmp/summary")" \
  "baskets: 4 baskets (1 empty, 3 duplicate items collapsed), 1 itemsets, 0 rules"
"$bin" baskets --fimi "$tmp/b8.dat" --min-support 0.6 --json > "$tmp/j" || fail=1
check b8-json "$(sed 's/"seconds":[0-9.]*/"seconds":S/' "$tmp/j")" \
  '{"itemsets":1,"rules":0,"seconds":S,"empty_baskets":1,"duplicate_items":3}'
printf 'milk,bread,milk\n\nbread\n' > "$tmp/b8.csv"
"$bin" baskets --basket-csv "$tmp/b8.csv" --min-support 1 --json > "$tmp/j" || fail=1
check b8-csv-json "$(sed 's/"seconds":[0-9.]*/"seconds":S/' "$tmp/j")" \
  '{"itemsets":3,"rules":0,"seconds":S,"empty_baskets":1,"duplicate_items":1}'

# count only (nothing written): exact, with no cap. One basket of 30 items at
# support 1 has 2^30-1 non-empty subsets, past the 10^8 that caps a pre-flight
# before writing; all 30 items are perfect extensions, so counting is instant.
seq -s ' ' 1 30 > "$tmp/b30.dat"
"$bin" baskets --fimi "$tmp/b30.dat" --min-support 1 --json --quiet > "$tmp/j" || fail=1
check count-uncapped-json "$(sed 's/"seconds":[0-9.]*/"seconds":S/' "$tmp/j")" \
  '{"itemsets":1073741823,"rules":0,"seconds":S,"empty_baskets":0,"duplicate_items":0}'
# --max-itemsets caps what is written; with nothing written it caps nothing
"$bin" baskets --fimi "$tmp/b30.dat" --min-support 1 --max-itemsets 5 --quiet > "$tmp/summary" || fail=1
check count-uncapped "$(sed 's/, [0-9.]* s$//' "$tmp/summary")" "baskets: 1 baskets (0 empty, 0 duplicate items collapsed), 1073741823 itemsets, 0 rules"

# --max-itemsets caps the itemsets written, not the rules: at support 1, t.dat
# has 8 frequent itemsets (a4 b3 c3 d1 ab2 ac2 bc2 abc1), and its rules at
# confidence 0.6 are still the 4 of support 2 (abc's three rules have 1/2)
"$bin" baskets --fimi "$tmp/t.dat" --min-support 1 --max-itemsets 3 --itemsets "$tmp/cap2.txt" \
  --rules "$tmp/rules2.txt" --min-confidence 0.6 --quiet > "$tmp/summary" 2> /dev/null
check cap-rules-exit "$?" 0
check cap-rules-summary "$(sed 's/, [0-9.]* s$//' "$tmp/summary")" "baskets: 6 baskets (0 empty, 1 duplicate item collapsed), 3+ itemsets, 4 rules"
check cap-rules-sets "$(wc -l < "$tmp/cap2.txt")" "3"
check cap-rules-rules "$(wc -l < "$tmp/rules2.txt")" "4"
"$bin" baskets --fimi "$tmp/t.dat" --min-support 1 --max-itemsets 3 --rules "$tmp/rules3.txt" \
  --min-confidence 0.6 --quiet > "$tmp/summary" || fail=1
check cap-rules-count-only "$(sed 's/, [0-9.]* s$//' "$tmp/summary")" "baskets: 6 baskets (0 empty, 1 duplicate item collapsed), 8 itemsets, 4 rules"

# The rules guard counts every frequent itemset, since rules hold them all,
# whatever --kind. {ab, ab, abc} at support 1: 7 frequent itemsets (a3 b3 c1
# ab3 ac1 bc1 abc1), 2 closed (ab, abc), 1 maximal (abc); rules at confidence
# 0.8: a=>b, b=>a, c=>a, c=>b, ac=>b, bc=>a.
printf '1 2\n1 2\n1 2 3\n' > "$tmp/k.dat"
for kind in closed maximal; do
  "$bin" baskets --fimi "$tmp/k.dat" --min-support 1 --kind $kind --rules "$tmp/k-$kind.txt" \
    --max-rule-itemsets 6 --quiet > /dev/null 2> "$tmp/e"
  check guard-$kind-exit "$?" 1
  grep -q "more than 6 frequent itemsets" "$tmp/e" || { echo "FAIL guard-$kind message"; cat "$tmp/e"; fail=1; }
  [ -e "$tmp/k-$kind.txt" ] && { echo "FAIL guard-$kind wrote rules"; fail=1; }
done
"$bin" baskets --fimi "$tmp/k.dat" --min-support 1 --kind closed --itemsets "$tmp/k-sets.txt" \
  --rules "$tmp/k-rules.txt" --max-rule-itemsets 7 --quiet > "$tmp/summary" || fail=1
check guard-at-limit "$(sed 's/, [0-9.]* s$//' "$tmp/summary")" "baskets: 3 baskets (0 empty, 0 duplicate items collapsed), 2 itemsets, 6 rules"
check guard-closed-sets "$(sort "$tmp/k-sets.txt" | tr '\n' ';')" "1 2 #SUP: 3;1 2 3 #SUP: 1;"
"$bin" baskets --fimi "$tmp/k.dat" --min-support 1 --recommend 1 --out "$tmp/k-recs.csv" \
  --max-rule-itemsets 6 --quiet > /dev/null 2>&1
check guard-recommend "$?" 1
"$bin" baskets --fimi "$tmp/k.dat" --min-support 1 --max-rule-itemsets 0 2> /dev/null
check guard-zero "$?" 2

# --store: an Online Retail log. Items A = 85123A, B = 71053, C = 84406B.
# Invoices: 536365 (17850) A B A, with A on two lines; 536366 (17850) A B C;
# 536367 (13047) A B; 536368 (13047) A; 536369 (12583) B C; and C536370
# (12583) A B, a cancellation with negative quantities.
cat > "$tmp/retail.csv" <<'EOF'
InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country
536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,2010-12-01 08:26:00,2.55,17850.0,United Kingdom
536365,71053,WHITE METAL LANTERN,6,2010-12-01 08:26:00,3.39,17850.0,United Kingdom
536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,2,2010-12-01 08:26:00,2.55,17850.0,United Kingdom
536366,85123A,WHITE HANGING HEART T-LIGHT HOLDER,1,2010-12-02 09:00:00,2.55,17850.0,United Kingdom
536366,71053,WHITE METAL LANTERN,1,2010-12-02 09:00:00,3.39,17850.0,United Kingdom
536366,84406B,CREAM CUPID HEARTS COAT HANGER,1,2010-12-02 09:00:00,2.75,17850.0,United Kingdom
536367,85123A,WHITE HANGING HEART T-LIGHT HOLDER,3,2010-12-03 10:00:00,2.55,13047.0,United Kingdom
536367,71053,WHITE METAL LANTERN,3,2010-12-03 10:00:00,3.39,13047.0,United Kingdom
536368,85123A,WHITE HANGING HEART T-LIGHT HOLDER,4,2010-12-04 11:00:00,2.55,13047.0,United Kingdom
536369,71053,WHITE METAL LANTERN,2,2010-12-05 12:00:00,3.39,12583.0,France
536369,84406B,CREAM CUPID HEARTS COAT HANGER,2,2010-12-05 12:00:00,2.75,12583.0,France
C536370,85123A,WHITE HANGING HEART T-LIGHT HOLDER,-1,2010-12-06 13:00:00,2.55,12583.0,France
C536370,71053,WHITE METAL LANTERN,-1,2010-12-06 13:00:00,3.39,12583.0,France
EOF
if "$bin" import --store "$tmp/store" --format online-retail "$tmp/retail.csv" > /dev/null; then
  # Returns excluded: 5 baskets, support 2: A4 B4 C2 AB3 BC2. Rules at
  # confidence 0.5: C=>B 2/2 (lift 1/(4/5) = 1.25), A=>B and B=>A 3/4 (lift
  # 0.75/(4/5) = 0.9375), B=>C 2/4 (lift 0.5/(2/5) = 1.25). Customers own
  # 17850 {A,B,C}, 13047 {A,B}, 12583 {B,C}: 13047 gets C from B=>C
  # (0.5 x 1.25 = 0.625), 12583 gets A from B=>A (0.75 x 0.9375 = 0.703125).
  # The repeated A of 536365 is one item of its basket: no duplicate reported.
  # Ties are ordered by item id, which the store gives in the order the import
  # first meets the items: A 0, B 1, C 2, so A=>B comes before B=>A.
  "$bin" baskets --store "$tmp/store" --min-support 2 --min-confidence 0.5 --rules "$tmp/s-rules.txt" \
    --recommend 2 --out "$tmp/s-recs.csv" --quiet > "$tmp/summary" || fail=1
  check store-summary "$(sed 's/, [0-9.]* s$//' "$tmp/summary")" \
    "baskets: 5 baskets (0 empty, 0 duplicate items collapsed), 5 itemsets, 4 rules"
  check store-rules "$(tr '\n' ';' < "$tmp/s-rules.txt")" \
    "84406B ==> 71053 #SUP: 2 #CONF: 1 #LIFT: 1.25;85123A ==> 71053 #SUP: 3 #CONF: 0.75 #LIFT: 0.9375;\
71053 ==> 85123A #SUP: 3 #CONF: 0.75 #LIFT: 0.9375;71053 ==> 84406B #SUP: 2 #CONF: 0.5 #LIFT: 1.25;"
  check store-recs "$(sed 1d "$tmp/s-recs.csv" | sort | tr '\n' ';')" \
    "12583,85123A,WHITE HANGING HEART T-LIGHT HOLDER,0.703125,{71053} ==> {85123A};\
13047,84406B,CREAM CUPID HEARTS COAT HANGER,0.625,{71053} ==> {84406B};"
  # --include-returns: C536370 is a sixth basket {A,B}: A5 B5 AB4, so B=>C
  # falls to 2/5 < 0.5 and 3 rules remain; 12583 now owns A, B and C, and
  # 13047 has no rule left to C: no recommendation at all. Lift 0.96 is
  # computed as 0.8 x 6 / 5, which in doubles is 0.9600000000000002.
  "$bin" baskets --store "$tmp/store" --include-returns --min-support 2 --min-confidence 0.5 \
    --rules "$tmp/r-rules.txt" --recommend 2 --out "$tmp/r-recs.jsonl" --quiet > "$tmp/summary" || fail=1
  check store-returns-summary "$(sed 's/, [0-9.]* s$//' "$tmp/summary")" \
    "baskets: 6 baskets (0 empty, 0 duplicate items collapsed), 5 itemsets, 3 rules"
  check store-returns-rules "$(tr '\n' ';' < "$tmp/r-rules.txt")" \
    "84406B ==> 71053 #SUP: 2 #CONF: 1 #LIFT: 1.2;85123A ==> 71053 #SUP: 4 #CONF: 0.8 #LIFT: 0.9600000000000002;\
71053 ==> 85123A #SUP: 4 #CONF: 0.8 #LIFT: 0.9600000000000002;"
  check store-returns-recs "$(wc -c < "$tmp/r-recs.jsonl")" "0"
else
  echo "FAIL store import"; fail=1
fi

# L3: Groceries, arules' 5668 rules at supp 0.001, conf 0.5
data=${SEGMINT_DATA:-${SEGMINT_DATA_DEFAULT:-}}
if [ -n "$data" ] && [ -f "$data/baskets/groceries.csv" ]; then
  "$bin" baskets --basket-csv "$data/baskets/groceries.csv" --min-support 0.001 --rules "$tmp/g.txt" \
    --min-confidence 0.5 --json > "$tmp/gj" || fail=1
  check groceries-rules "$(grep -o '"rules":[0-9]*' "$tmp/gj")" '"rules":5668'
  check groceries-lines "$(wc -l < "$tmp/g.txt")" "5668"
else
  echo "SKIP groceries: no data"
fi
[ $fail -eq 0 ] && echo "cli_baskets: all passed"
exit $fail
