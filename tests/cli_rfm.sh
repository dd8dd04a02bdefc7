#!/usr/bin/env bash
# End-to-end `segmint rfm` on a store imported from the CDNOW log (skipped
# cleanly when the data set is absent): counts reconcile, scores follow the
# tie rule against a recomputation, segment files and --print-segments,
# --clv, runs in the store, and the errors a user meets.
set -u
segmint=${1:?path of the segmint binary}
data=${SEGMINT_DATA:-${SEGMINT_DATA_DEFAULT:-}}
log=$data/cdnow/CDNOW_sample.txt
py=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
check() { if ! eval "$2"; then echo "FAIL: $1"; fail=1; fi; }

"$segmint" rfm >/dev/null 2>"$tmp/err"
check "missing --store is a usage error" '[ $? -eq 2 ] && grep -q -- "--store" "$tmp/err"'
"$segmint" rfm --print-segments > "$tmp/seg.csv"
check "--print-segments writes the default table" \
  '[ $? -eq 0 ] && grep -q "^Champions,5,5,4,5,1,5$" "$tmp/seg.csv" && [ $(grep -vc "^#" "$tmp/seg.csv") -eq 12 ]'
"$segmint" rfm --segments "$tmp/seg.csv" --print-segments > "$tmp/seg2.csv"
check "a printed table reads back unchanged" 'cmp -s "$tmp/seg.csv" "$tmp/seg2.csv"'
printf 'segment,r_min,r_max,f_min,f_max,m_min,m_max\nTop,5,5,5,5,5,6\n' > "$tmp/bad.csv"
"$segmint" rfm --segments "$tmp/bad.csv" --print-segments >/dev/null 2>"$tmp/err"
check "a bad segment file names line and column" \
  '[ $? -eq 1 ] && grep -q "bad.csv:2:7: field \"m_max\"" "$tmp/err"'
"$segmint" rfm --store "$tmp/none" >/dev/null 2>"$tmp/err"
check "a missing store is named" '[ $? -eq 1 ] && grep -q "none" "$tmp/err"'

if [ ! -r "$log" ] || [ ! -x "$py" ]; then
  echo "SKIP cli_rfm CDNOW part: data set or $py not available"
  exit $fail
fi
"$segmint" import --store "$tmp/st" --format cdnow --now 2000-01-01 --quiet "$log"
check "import of the CDNOW log" '[ $? -eq 0 ]'
"$segmint" rfm --store "$tmp/st" --as-of 1997-09-30 --json --quiet --out "$tmp/rfm.csv" \
  > "$tmp/rfm.json" 2> "$tmp/rfm.err"
check "rfm exits 0 and stores a run" '[ $? -eq 0 ] && grep -q "stored as run 1" "$tmp/rfm.err"'
printf 'segment,r_min,r_max,f_min,f_max,m_min,m_max\n# recent buyers only\nRecent,4,5,1,5,1,5\n' \
  > "$tmp/mine.csv"
"$segmint" rfm --store "$tmp/st" --as-of 1997-09-30 --segments "$tmp/mine.csv" --json --no-store \
  --out "$tmp/mine.jsonl" > "$tmp/mine.json"
check "rfm with a custom table" '[ $? -eq 0 ]'
"$segmint" rfm --store "$tmp/st" --clv --json --no-store --out "$tmp/clv.csv" > "$tmp/clv.json"
check "rfm --clv" '[ $? -eq 0 ]'
check "--no-store stores nothing" '"$segmint" info --store "$tmp/st" | grep -q "runs 1$"'
check "the run is listed as kind rfm" '"$segmint" runs --store "$tmp/st" | grep -q " rfm "'
"$segmint" export --store "$tmp/st" --run 1 --out "$tmp/export.csv"
check "the run exports" '[ $? -eq 0 ]'
"$py" - "$tmp" "$log" <<'EOF' || fail=1
import csv, json, sys, datetime
tmp, log = sys.argv[1], sys.argv[2]
s = json.loads(open(f"{tmp}/rfm.json").read())
assert s["customers"] == 2357 and s["as_of"] == "1997-09-30T00:00:00Z", s
assert sum(s["segments"].values()) == 2357
assert sum(t["customers"] for t in s["tiers"].values()) == 2357
assert sum(s["lifecycle"].values()) == 2357
assert len(s["pareto"]) == 21 and s["pareto"][0] == 0 and abs(s["pareto"][-1] - 1) < 1e-12
# recompute R, F, M from the log (orders = rows, CDNOW has one basket per row
# unless a customer bought twice on a day) and the scores by the tie rule
rows = {}
for line in open(log):
    f = line.split()
    if not f:
        continue
    day = datetime.date(int(f[2][:4]), int(f[2][4:6]), int(f[2][6:]))
    if day > datetime.date(1997, 9, 30):
        continue
    rows.setdefault(str(int(f[1])), []).append((day, float(f[4])))
out = list(csv.DictReader(open(f"{tmp}/rfm.csv")))
assert len(out) == 2357
asof = datetime.date(1997, 9, 30)
R = {c: (asof - max(d for d, _ in v)).days for c, v in rows.items()}
M = {c: round(sum(a for _, a in v), 2) for c, v in rows.items()}
def score(values, c, higher):
    x = values[c]
    worse = sum(1 for v in values.values() if (v < x if higher else v > x))
    return 1 + 5 * worse // len(values)
for r in out:
    c = r["customer_id"]
    assert float(r["recency_days"]) == R[c], (c, r["recency_days"], R[c])
    assert abs(float(r["monetary"]) - M[c]) < 1e-6, (c, r["monetary"], M[c])
    assert int(r["r"]) == score(R, c, False), c
    assert int(r["m"]) == score(M, c, True), c
    assert int(r["rfm_code"]) == 100 * int(r["r"]) + 10 * int(r["f"]) + int(r["m"])
F = {r["customer_id"]: int(r["frequency"]) for r in out}
assert all(int(r["f"]) == score(F, r["customer_id"], True) for r in out)
mine = json.loads(open(f"{tmp}/mine.json").read())
recent = sum(1 for r in out if int(r["r"]) >= 4)
assert mine["segments"] == {"Recent": recent, "Other": 2357 - recent}, mine["segments"]
lines = [json.loads(l) for l in open(f"{tmp}/mine.jsonl")]
assert all(l["segment"] == ("Recent" if l["r"] >= 4 else "Other") for l in lines)
# the stored run carries the same grading, names resolved by segmint export
exported = {r["customer_id"]: r for r in csv.DictReader(open(f"{tmp}/export.csv"))}
assert len(exported) == 2357
for r in out:
    e = exported[r["customer_id"]]
    assert (e["r_score"], e["f_score"], e["m_score"], e["rfm_code"]) == (r["r"], r["f"], r["m"], r["rfm_code"])
    assert (e["rfm_segment"], e["value_tier"], e["lifecycle"]) == (r["segment"], r["tier"], r["lifecycle"]), (e, r)
c = json.loads(open(f"{tmp}/clv.json").read())
assert c["value"] == "clv" and c["customers"] == 2357
cl = list(csv.DictReader(open(f"{tmp}/clv.csv")))
assert all(0 <= float(r["p_alive"]) <= 1 and float(r["value"]) == float(r["clv"]) for r in cl)
assert all(r["lifecycle"] == "churned" for r in cl if float(r["p_alive"]) < 0.5)
EOF
exit $fail
