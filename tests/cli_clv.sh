#!/usr/bin/env bash
# End-to-end `segmint clv` on the CDNOW summaries and on a store imported
# from the CDNOW log (skipped cleanly when the data set is absent): the JSON
# object's shape and the published parameters (FHL 2005: r 0.243, alpha
# 4.414, a 0.793, b 2.426, LL -9582.4; spend p 6.25, q 3.74, v 15.44), the
# holdout table, runs in the store, per-customer CSV/JSONL, user errors.
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
