#!/usr/bin/env bash
# Installs the build into a scratch prefix and builds tests/example/example.c
# against it with nothing but `pkg-config --cflags --libs segmint`, as a user would.
set -eu
build=${1:?build dir}; cc=${2:-cc}; extra=${3:-}
here=$(cd "$(dirname "$0")" && pwd)
prefix=$(mktemp -d); trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null
libdir=$(find "$prefix" -name segmint.pc -printf '%h\n' | head -1)
export PKG_CONFIG_PATH="$libdir"
flags=$(pkg-config --cflags --libs segmint)
"$cc" -std=c11 -Wall -Wextra -Werror $extra "$here/example.c" -o "$prefix/example" $flags
LD_LIBRARY_PATH="$prefix/lib:$(dirname "$libdir")" "$prefix/example"
