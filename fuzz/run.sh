#!/usr/bin/env bash
# Runs fuzz targets on stable Rust (cargo fuzz -s none), each from its
# seeds (fuzz/seeds/<target>, made by make-seeds.py) with its dictionary.
#
# usage: fuzz/run.sh SECONDS [TARGET...]   (default: every target)
# Exits 1 on the first finding (the input is in fuzz/artifacts/<target>/).
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:?usage: run.sh SECONDS [TARGET...]}
shift
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(hcall hcall_sequence lifecycle snapshot transcript config fdt bridge_rsp bridge_elf)
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t" logs
  len=4096
  [ "$t" = fdt ] && len=16384
  args=(-max_total_time="$secs" -max_len="$len" -print_final_stats=1)
  case $t in
    transcript|config) args+=(-dict=dict/transcript.dict) ;;
    fdt) args+=(-dict=dict/fdt.dict) ;;
    bridge_rsp) args+=(-dict=dict/bridge_rsp.dict) ;;
  esac
  echo "== fuzz $t for ${secs}s"
  set +e
  cargo fuzz run -s none "$t" "corpus/$t" "seeds/$t" -- "${args[@]}" >"logs/$t.log" 2>&1
  rc=$?
  set -e
  grep -E "^(stat::|#[0-9]+ +(DONE|INITED))|cov: [0-9]+ ft" "logs/$t.log" | grep -v "NEW\|REDUCE\|pulse" | tail -8 || true
  if [ "$rc" != 0 ]; then
    grep -E "panicked|ERROR|SUMMARY|Test unit" "logs/$t.log" || tail -20 "logs/$t.log"
    echo "fuzz $t: finding (see fuzz/artifacts/$t, fuzz/logs/$t.log)"
    exit 1
  fi
done
