#!/usr/bin/env bash
# Build the lqos-ts eBPF objects: dataplane/bpf/*.c,*.h -> dataplane/build/lqos_kern.o (the data path)
# and dataplane/build/lqos_flow_scan.o (the flow table reader, dataplane/flowScan.ts).
# Idempotent: does nothing when both objects are newer than every source file.
# Usage: bash dataplane/build.sh [--force]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src_dir="$here/bpf"
out_dir="$here/build"
obj="$out_dir/lqos_kern.o"
scan_obj="$out_dir/lqos_flow_scan.o"

need() {
  if ! command -v "$1" >/dev/null 2>&1; then
    echo "dataplane/build.sh: required tool '$1' not found - install the Debian/Ubuntu package '$2' (apt-get install $2)" >&2
    exit 127
  fi
}

if [[ "${1:-}" != "--force" && -f "$obj" && -f "$scan_obj" ]]; then
  stale=0
  for f in "$src_dir"/*.c "$src_dir"/*.h "$here/build.sh"; do
    if [[ "$f" -nt "$obj" || "$f" -nt "$scan_obj" ]]; then stale=1; break; fi
  done
  if [[ $stale -eq 0 ]]; then
    exit 0
  fi
fi

need clang clang
if [[ ! -f /usr/include/bpf/bpf_helpers.h ]]; then
  echo "dataplane/build.sh: /usr/include/bpf/bpf_helpers.h not found - install the package 'libbpf-dev'" >&2
  exit 1
fi
if [[ ! -f /usr/include/linux/bpf.h ]]; then
  echo "dataplane/build.sh: /usr/include/linux/bpf.h not found - install the package 'linux-libc-dev'" >&2
  exit 1
fi

arch_inc="/usr/include/$(uname -m)-linux-gnu"
mkdir -p "$out_dir"
tmp="$out_dir/.build.tmp.$$"
trap 'rm -f "$tmp"' EXIT
for pair in "lqos_kern.c:$obj" "lqos_flow_scan.c:$scan_obj"; do
  src="${pair%%:*}" out="${pair#*:}"
  clang -target bpf -g -O2 -Wall -Werror -Wno-unused-function \
    -I "$src_dir" -I "$arch_inc" \
    -c "$src_dir/$src" -o "$tmp"
  mv -f "$tmp" "$out"
  echo "dataplane/build.sh: built $out"
done
