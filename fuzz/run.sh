#!/usr/bin/env bash
# Runs fuzz targets on stable Rust (cargo fuzz -s none), each from its
# seeds (fuzz/seeds/<target>, made by make-seeds.py) with its dictionary.
#
# usage: fuzz/run.sh SECONDS [TARGET...]   (default: every target)
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:?usage: run.sh SECONDS [TARGET...]}
shift
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(hcall hcall_sequence transcript config fdt bridge_rsp bridge_elf)
dict_of() {
  case $1 in
    transcript|config) echo dict/transcript.dict ;;
    fdt) echo dict/fdt.dict ;;
    bridge_rsp) echo dict/bridge_rsp.dict ;;
  esac
}
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  len=4096; [ "$t" = fdt ] && len=16384
  args=(-max_total_time="$secs" -max_len="$len" -print_final_stats=1)
  d=$(dict_of "$t")
  [ -n "$d" ] && args+=(-dict="$d")
  echo "== fuzz $t for ${secs}s"
  cargo fuzz run -s none "$t" "corpus/$t" "seeds/$t" -- "${args[@]}" 2>&1 \
    | grep -E "^(stat::|#[0-9]+ +(DONE|INITED))|ERROR|panicked|SUMMARY|Test unit" || true
  # cargo fuzz exits non-zero on a finding; the pipe above hides that.
  [ "${PIPESTATUS[0]}" = 0 ] || { echo "fuzz $t: finding (see fuzz/artifacts/$t)"; exit 1; }
done
