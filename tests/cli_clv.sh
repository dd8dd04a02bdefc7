#!/usr/bin/env bash
# End-to-end `segmint clv` on the CDNOW summaries and on a store imported
# from the CDNOW log (skipped cleanly when the data set is absent): the JSON
# object's shape and the published parameters (FHL 2005: r 0.243, alpha
# 4.414, a 0.793, b 2.426, LL -9582.4; spend p 6.25, q 3.74, v 15.44), the
# holdout table, runs in the store, per-customer CSV/JSONL, user errors; and,
# without data, the historic CLV with per-item, acquisition and retention
# costs on a hand-made store.
set -u
segmint=${1:?path of the segmint binary}
data=${SEGMINT_DATA:-${SEGMINT_DATA_DEFAULT:-}}
summary=$data/cdnow/cdnow_customers_summary.csv
log=$data/cdnow/CDNOW_sample.txt
spend=$data/cdnow/cdnow_customers_summary_with_transactions.csv
py=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
check() { if ! eval "$2"; then echo "FAIL: $1"; fail=1; fi; }

# --- errors that need no data ----------------------------------------------------
"$segmint" clv >/dev/null 2>"$tmp/err"
check "missing --summary is a usage error" '[ $? -eq 2 ] && grep -q -- "--summary" "$tmp/err"'
printf 'frequency,recency,T\n1,2,3\n2,5,4\n' > "$tmp/bad.csv"
"$segmint" clv --summary "$tmp/bad.csv" >/dev/null 2>"$tmp/err"
check "recency > T names file:line:column" \
  '[ $? -eq 1 ] && grep -q "bad.csv:3:2: field \"recency\"" "$tmp/err"'
printf 'frequency,recency,T\n0,0,3\n0,0,4\n' > "$tmp/zero.csv"
"$segmint" clv --summary "$tmp/zero.csv" >/dev/null 2>"$tmp/err"
check "all-zero frequencies are refused clearly" \
  '[ $? -eq 1 ] && grep -q "no customer has a repeat purchase" "$tmp/err"'
"$segmint" clv --summary "$tmp/bad.csv" --model discounted >/dev/null 2>"$tmp/err"
check "discounted needs --retention" '[ $? -eq 2 ] && grep -q -- "--retention" "$tmp/err"'
"$segmint" clv --summary "$tmp/bad.csv" --model nope >/dev/null 2>&1
check "unknown model is a usage error" '[ $? -eq 2 ]'
"$segmint" clv --summary "$tmp/bad.csv" --out "$tmp/x.txt" >/dev/null 2>&1
check "--out must be .csv or .jsonl" '[ $? -eq 2 ]'

"$segmint" clv --summary "$tmp/bad.csv" --calibration-end 1997-09-30 >/dev/null 2>"$tmp/err"
check "--calibration-end needs --store" '[ $? -eq 2 ] && grep -q -- "--store" "$tmp/err"'
"$segmint" clv --store "$tmp/st" --summary "$tmp/bad.csv" >/dev/null 2>&1
check "--store and --summary exclude each other" '[ $? -eq 2 ]'
"$segmint" clv --store "$tmp/nostore" >/dev/null 2>"$tmp/err"
check "a missing store is named" '[ $? -eq 1 ] && grep -q "nostore" "$tmp/err"'

# --- historic CLV with per-item costs, on a hand-made store ---------------------------
# Calibration ends 2023-01-31. Unit costs I1 2.00, I2 0.50, I3 1.25 (I4 unpriced).
# c1: 01-01 2 x I1 at 5.00 + 1 x I2 at 3.00      revenue 13.00  cost 2x2.00 + 0.50 = 4.50
#     01-11 3 x I2 at 3.00, same-day return 1 x I2  revenue  6.00  cost 1.50 - 0.50 = 1.00
#     01-13 return only (1 x I1): neither revenue nor cost, as in the summary
#     02-10 1 x I4: after the calibration end, so I4 needs no price
#     revenue 19.00, cost 5.50; CLV 19 - 5.5 - 3 (acquisition) - 2 (retention) = 8.5
# c2: 01-06 4 x I3 at 2.50, 01-20 1 x I1 at 5.00  revenue 15.00  cost 5.00 + 2.00 = 7.00
#     CLV 15 - 7 - 3 - 2 = 3; total 11.5, mean 5.75, cost of goods 12.5
# frequency/recency/T in days: c1 1, 10, 30 (monetary 6); c2 1, 14, 25 (monetary 5)
cat > "$tmp/log.csv" <<'CSV'
invoice,customer_id,time,item,description,quantity,price
A,c1,2023-01-01T10:00:00Z,I1,MUG,2,5.00
A,c1,2023-01-01T10:00:00Z,I2,JAR,1,3.00
B,c1,2023-01-11T10:00:00Z,I2,JAR,3,3.00
CB,c1,2023-01-11T12:00:00Z,I2,JAR,-1,3.00
CC,c1,2023-01-13T10:00:00Z,I1,MUG,-1,5.00
D,c2,2023-01-06T10:00:00Z,I3,BOX,4,2.50
E,c2,2023-01-20T10:00:00Z,I1,MUG,1,5.00
F,c1,2023-02-10T10:00:00Z,I4,TIN,1,7.00
CSV
printf 'item,unit_cost\nI1,2.00\nI2,0.50\nI3,1.25\n' > "$tmp/costs.csv"
"$segmint" import --store "$tmp/tiny" "$tmp/log.csv" >/dev/null
check "import of the tiny log" '[ $? -eq 0 ]'
hist=(clv --store "$tmp/tiny" --model historic --calibration-end 2023-01-31)
"$segmint" "${hist[@]}" --item-costs "$tmp/costs.csv" --acquisition-cost 3 --retention-cost 2 \
  --json --out "$tmp/cost.csv" > "$tmp/cost.json" 2>"$tmp/err"
check "historic with item costs exits 0" '[ $? -eq 0 ]'
check "historic with item costs: totals by hand" \
  '[ "$(cat "$tmp/cost.json")" = "{\"model\": \"historic\", \"customers\": 2, \"total_clv\": 11.5, \"mean_clv\": 5.75, \"cost_of_goods\": 12.5}" ]'
check "historic with item costs: per customer by hand" \
  '[ "$(cat "$tmp/cost.csv")" = "customer_id,frequency,recency,T,monetary_value,cost_of_goods,clv
c1,1,10,30,6,5.5,8.5
c2,1,14,25,5,7,3" ]'
"$segmint" runs --store "$tmp/tiny" --run latest > "$tmp/run.json"
check "the run record holds both costs and the cost file" \
  'grep -q "\"acquisition_cost\": 3, \"retention_cost\": 2, \"item_costs\": \"$tmp/costs.csv\", \"missing_cost\": \"error\", \"rows_without_cost\": 0, \"cost_of_goods\": 12.5, \"total_clv\": 11.5" "$tmp/run.json"'
# margin x revenue without item costs: 0.5 x 19 - 3 - 2 = 4.5 and 0.5 x 15 - 5 = 2.5
"$segmint" "${hist[@]}" --margin 0.5 --acquisition-cost 3 --retention-cost 2 --no-store \
  --json > "$tmp/margin.json"
check "historic with margin and retention cost by hand" \
  'grep -q "\"total_clv\": 7, \"mean_clv\": 3.5}" "$tmp/margin.json"'
# without a calibration end the last day (02-10) counts, and I4 has no price
"$segmint" clv --store "$tmp/tiny" --model historic --item-costs "$tmp/costs.csv" --no-store \
  >/dev/null 2>"$tmp/err"
check "an unpriced item is an error naming it and the file" \
  '[ $? -eq 1 ] && grep -q "costs.csv: field \"item\": item '"'"'I4'"'"' of the store has no unit cost" "$tmp/err" && grep -q -- "--missing-cost zero" "$tmp/err"'
# with --missing-cost zero I4 costs 0: c1 revenue 19 + 7 = 26, cost 5.5, CLV 20.5; c2 8
"$segmint" clv --store "$tmp/tiny" --model historic --item-costs "$tmp/costs.csv" --no-store \
  --missing-cost zero --out "$tmp/cost_zero.csv" >/dev/null 2>"$tmp/err"
check "--missing-cost zero warns with the count and costs them 0" \
  '[ $? -eq 0 ] && grep -q "warning: 1 rows of 1 items have no unit cost" "$tmp/err" && [ "$(cut -d, -f1,6,7 "$tmp/cost_zero.csv")" = "customer_id,cost_of_goods,clv
c1,5.5,20.5
c2,7,8" ]'
printf 'item,unit_cost\nI1,2\nI2,0.5\nI1,3\n' > "$tmp/dup.csv"
"$segmint" "${hist[@]}" --item-costs "$tmp/dup.csv" --no-store >/dev/null 2>"$tmp/err"
check "a duplicate item names file:line" \
  '[ $? -eq 1 ] && grep -q "dup.csv:4:1: field \"item\": item '"'"'I1'"'"' appears twice (lines 2 and 4)" "$tmp/err"'
printf 'item,unit_cost\nI1,2\nI2,-0.5\n' > "$tmp/neg.csv"
"$segmint" "${hist[@]}" --item-costs "$tmp/neg.csv" --no-store >/dev/null 2>"$tmp/err"
check "a negative cost names file:line:field" \
  '[ $? -eq 1 ] && grep -q "neg.csv:3:2: field \"unit_cost\"" "$tmp/err"'
printf 'item,unit_cost\nI1,nan\n' > "$tmp/nan.csv"
"$segmint" "${hist[@]}" --item-costs "$tmp/nan.csv" --no-store >/dev/null 2>"$tmp/err"
check "a NaN cost names file:line:field" \
  '[ $? -eq 1 ] && grep -q "nan.csv:2:2: field \"unit_cost\"" "$tmp/err"'
printf 'frequency,recency,T,monetary_value\n1,2,3,4\n' > "$tmp/s.csv"
"$segmint" clv --summary "$tmp/s.csv" --model historic --item-costs "$tmp/costs.csv" >/dev/null 2>"$tmp/err"
check "--item-costs without --store is a usage error" \
  '[ $? -eq 2 ] && grep -q -- "--item-costs needs --store" "$tmp/err"'
"$segmint" clv --store "$tmp/tiny" --item-costs "$tmp/costs.csv" >/dev/null 2>"$tmp/err"
check "--item-costs with bgnbd is a usage error" '[ $? -eq 2 ]'
"$segmint" "${hist[@]}" --item-costs "$tmp/costs.csv" --margin 0.3 >/dev/null 2>"$tmp/err"
check "--item-costs with --margin is a usage error" '[ $? -eq 2 ]'
"$segmint" clv --summary "$tmp/s.csv" --model discounted --retention 0.9 --retention-cost 2 \
  >/dev/null 2>"$tmp/err"
check "--retention-cost with discounted is a usage error" \
  '[ $? -eq 2 ] && grep -q "no retention-cost term" "$tmp/err"'
"$segmint" clv --summary "$tmp/s.csv" --acquisition-cost 5 >/dev/null 2>"$tmp/err"
check "--acquisition-cost with bgnbd is a usage error" \
  '[ $? -eq 2 ] && grep -q -- "--acquisition-cost applies to --model historic and discounted" "$tmp/err"'
check "failed and --no-store runs store nothing" '"$segmint" info --store "$tmp/tiny" | grep -q "runs 1$"'

if [ ! -r "$summary" ] || [ ! -r "$spend" ] || [ ! -r "$log" ] || [ ! -x "$py" ]; then
  echo "SKIP cli_clv CDNOW part: data set or $py not available"
  exit $fail
fi

# --- BG/NBD on the published summary --------------------------------------------
"$segmint" clv --summary "$summary" --time-unit week --json --quiet > "$tmp/bg.json"
check "clv --json exits 0" '[ $? -eq 0 ]'
"$py" - "$tmp/bg.json" <<'EOF' || fail=1
import json, sys
text = open(sys.argv[1]).read()
obj = json.loads(text)
assert list(obj) == ["model", "params", "loglik", "iterations", "converged"], list(obj)
assert list(obj["params"]) == ["r", "alpha", "a", "b"], list(obj["params"])
assert obj["model"] == "bgnbd" and obj["converged"] is True and obj["iterations"] > 0
published = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
for k, v in published.items():
    assert abs(obj["params"][k] - v) <= 0.0005, (k, obj["params"][k])
assert abs(obj["loglik"] - (-9582.4)) <= 0.05, obj["loglik"]
EOF

# --- with spend: Gamma-Gamma and the per-customer files ---------------------------
"$segmint" clv --summary "$spend" --time-unit week --json --quiet \
  --out "$tmp/clv.csv" > "$tmp/gg.json"
check "clv with spend exits 0" '[ $? -eq 0 ]'
"$segmint" clv --summary "$spend" --time-unit week --quiet --out "$tmp/clv.jsonl" >/dev/null
"$py" - "$tmp/gg.json" "$tmp/clv.csv" "$tmp/clv.jsonl" <<'EOF' || fail=1
import csv, json, sys
obj = json.loads(open(sys.argv[1]).read())
assert list(obj) == ["model", "params", "loglik", "iterations", "converged", "gamma_gamma"], list(obj)
gg = obj["gamma_gamma"]
assert list(gg) == ["p", "q", "v", "loglik"], list(gg)
assert abs(gg["p"] - 6.25) <= 0.005 and abs(gg["q"] - 3.74) <= 0.005 and abs(gg["v"] - 15.44) <= 0.015, gg
rows = list(csv.DictReader(open(sys.argv[2])))
assert len(rows) == 2357
assert list(rows[0]) == ["customer_id", "frequency", "recency", "T", "monetary_value", "p_alive",
                         "expected_purchases", "expected_spend", "clv"], list(rows[0])
first = rows[0]
assert first["customer_id"] == "1" and float(first["frequency"]) == 2
assert abs(float(first["p_alive"]) - 0.7266) < 1e-3
lines = [json.loads(l) for l in open(sys.argv[3])]
assert len(lines) == 2357 and lines[0]["customer_id"] == "1"
assert all(abs(float(r["clv"]) - l["clv"]) <= 1e-9 * max(1.0, abs(l["clv"])) for r, l in zip(rows, lines))
assert all(0.0 <= l["p_alive"] <= 1.0 and l["clv"] >= 0.0 for l in lines)
EOF
"$segmint" clv --summary "$spend" --time-unit week --quiet --out "$tmp/clv.csv" >/dev/null 2>"$tmp/err"
check "existing --out is refused without --force" '[ $? -eq 1 ] && grep -q "clv.csv" "$tmp/err"'

# --- the value models ---------------------------------------------------------------
"$segmint" clv --summary "$spend" --time-unit week --model discounted --retention 0.9 \
  --horizon 12 --discount 0.01 --json > "$tmp/disc.json"
check "discounted exits 0" '[ $? -eq 0 ]'
"$segmint" clv --summary "$spend" --model historic --margin 0.3 --json > "$tmp/hist.json"
check "historic exits 0" '[ $? -eq 0 ]'
"$py" - "$tmp/disc.json" "$tmp/hist.json" "$spend" <<'EOF' || fail=1
import csv, json, sys
d = json.loads(open(sys.argv[1]).read())
h = json.loads(open(sys.argv[2]).read())
assert d["model"] == "discounted" and d["customers"] == 2357
assert h["model"] == "historic" and h["customers"] == 2357
rows = list(csv.DictReader(open(sys.argv[3])))
# historic: margin x repeat revenue (zbar x x) summed over customers
want = sum(0.3 * float(r["zbar"]) * float(r["x"]) for r in rows)
assert abs(h["total_clv"] - want) <= 1e-9 * want, (h["total_clv"], want)
# discounted: monthly margin zbar x x / T x 4.345 times sum_{t=1..12} (0.9/1.01)^t
g = sum((0.9 / 1.01) ** t for t in range(1, 13))
want = sum(float(r["zbar"]) * float(r["x"]) / float(r["T"]) * 4.345 * g for r in rows)
assert abs(d["total_clv"] - want) <= 1e-9 * want, (d["total_clv"], want)
EOF
# --- from a store: the raw log, calibration to 1997-09-30, holdout to 1998-06-30 ----
"$segmint" import --store "$tmp/st" --format cdnow --now 2000-01-01 --quiet "$log"
check "import of the CDNOW log" '[ $? -eq 0 ]'
"$segmint" clv --store "$tmp/st" --calibration-end 1997-09-30 --time-unit week --json --quiet \
  --out "$tmp/store.csv" > "$tmp/st.json" 2> "$tmp/st.err"
check "clv --store exits 0" '[ $? -eq 0 ]'
check "the holdout table goes to stderr with --json" \
  'grep -q "total actual 1882, predicted 1653" "$tmp/st.err" && grep -q "stored as run 1" "$tmp/st.err"'
"$segmint" clv --store "$tmp/st" --calibration-end 1997-09-30 --time-unit week --no-store > "$tmp/st.txt"
check "text output holds the parameters and the holdout table" \
  'grep -q "r=0.24259" "$tmp/st.txt" && grep -q "^  7+ " "$tmp/st.txt"'
check "--no-store stores nothing" '"$segmint" info --store "$tmp/st" | grep -q "runs 1$"'
"$py" - "$tmp/st.json" "$tmp/store.csv" <<'EOF' || fail=1
import csv, json, sys
obj = json.loads(open(sys.argv[1]).read())
assert list(obj) == ["model", "params", "loglik", "iterations", "converged", "gamma_gamma"], list(obj)
published = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
for k, v in published.items():
    assert abs(obj["params"][k] - v) <= 0.0005, (k, obj["params"][k])
# from the unrounded log spends all three Gamma-Gamma digits are met
gg = obj["gamma_gamma"]
assert abs(gg["p"] - 6.25) <= 0.005 and abs(gg["q"] - 3.74) <= 0.005 and abs(gg["v"] - 15.44) <= 0.005, gg
rows = list(csv.DictReader(open(sys.argv[2])))
assert len(rows) == 2357 and rows[0]["customer_id"] == "1", rows[0]
assert abs(float(rows[0]["T"]) - 272 / 7) < 1e-12
EOF
"$segmint" clv --store "$tmp/st" --model historic --margin 0.5 --json > "$tmp/h.json" 2>/dev/null
check "historic from the store" '[ $? -eq 0 ] && grep -q "\"customers\": 2357" "$tmp/h.json"'
"$py" - "$tmp/h.json" "$log" <<'EOF' || fail=1
import json, sys
h = json.loads(open(sys.argv[1]).read())
total = sum(float(l.split()[4]) for l in open(sys.argv[2]) if l.strip())
assert abs(h["total_clv"] - 0.5 * total) <= 1e-6 * total, (h["total_clv"], total)
EOF
check "two runs stored" '"$segmint" info --store "$tmp/st" | grep -q "runs 2$"'
check "runs are listed as kind clv" '[ $("$segmint" runs --store "$tmp/st" | grep -c " clv ") -eq 2 ]'
"$segmint" export --store "$tmp/st" --run 1 --out "$tmp/export.csv"
"$py" - "$tmp/export.csv" "$tmp/store.csv" <<'EOF' || fail=1
import csv, sys
exported = {r["customer_id"]: r for r in csv.DictReader(open(sys.argv[1]))}
for r in csv.DictReader(open(sys.argv[2])):
    e = exported[r["customer_id"]]
    assert float(e["clv_model"]) == float(r["clv"]) and float(e["p_alive"]) == float(r["p_alive"]), (e, r)
    assert float(e["expected_purchases"]) == float(r["expected_purchases"])
EOF
exit $fail
