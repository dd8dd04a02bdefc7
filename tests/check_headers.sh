#!/usr/bin/env bash
# Every public header must compile on its own, as C11 and as C++.
set -u
include=${1:?include dir}; cc=${2:?C compiler}; cxx=${3:?C++ compiler}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail=0
for header in "$include"/segmint/*.h; do
  name=segmint/$(basename "$header")
  printf '#include "%s"\nint main(void) { return 0; }\n' "$name" > "$tmp/t.c"
  cp "$tmp/t.c" "$tmp/t.cpp"
  "$cc" -std=c11 -Wall -Wextra -Werror -pedantic -I"$include" -c "$tmp/t.c" -o "$tmp/t.o" \
    || { echo "not self-contained as C11: $name"; fail=1; }
  "$cxx" -std=c++11 -Wall -Wextra -Werror -I"$include" -c "$tmp/t.cpp" -o "$tmp/t.o" \
    || { echo "not usable from C++: $name"; fail=1; }
done
exit $fail
