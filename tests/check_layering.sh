#!/usr/bin/env bash
# Enforces ARCHITECTURE.md's folder rules: kernels/ includes no storage/ or
# engine/ header and no <lmdb.h>; storage/ includes no engine/ header; only
# storage/ includes <lmdb.h>; kernels do no I/O (no stdio.h).
set -u
root=${1:?source root}
cd "$root" || exit 2
fail=0
report() { echo "layering: $*"; fail=1; }

while IFS= read -r hit; do report "kernels/ must not include storage/ or engine/: $hit"; done \
  < <(grep -nE '#include *"(storage|engine|bench|datasets)/' kernels/*.[ch] 2>/dev/null)
while IFS= read -r hit; do report "kernels/ do no I/O: $hit"; done \
  < <(grep -nE '#include *<(stdio|fcntl|unistd)\.h>' kernels/*.[ch] 2>/dev/null | grep -v '^kernels/core.c:')
while IFS= read -r hit; do report "storage/ must not include engine/: $hit"; done \
  < <(grep -nE '#include *"(engine|bench)/' storage/*.[ch] 2>/dev/null)
while IFS= read -r hit; do report "only storage/ includes <lmdb.h>: $hit"; done \
  < <(grep -rnE '#include *<lmdb\.h>' --include='*.[ch]' kernels engine bench datasets include 2>/dev/null)
exit $fail
