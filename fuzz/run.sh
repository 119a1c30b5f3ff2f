#!/usr/bin/env bash
# Runs fuzz targets on stable Rust (cargo fuzz -s none), each from its
# seeds (fuzz/seeds/<target>, made by make-seeds.py) with its dictionary.
# libFuzzer is single-threaded: JOBS targets (default 2, one per core of
# CI's machine) run at once after one build.
#
# usage: fuzz/run.sh SECONDS [TARGET...]   (default: every target)
# Exits 1 when a target finds something (the input is in
# fuzz/artifacts/<target>/, the log in fuzz/logs/<target>.log).
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:?usage: run.sh SECONDS [TARGET...]}
shift
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(hcall hcall_sequence lifecycle snapshot transcript config fdt bridge_rsp bridge_elf)
jobs=${JOBS:-2}
mkdir -p logs
# Every target at once (the runs below then start at once).
cargo fuzz build -s none >logs/build.log 2>&1 || { tail -20 logs/build.log; exit 1; }

# one TARGET: runs it for SECONDS; the exit status is libFuzzer's.
one() {
  local t=$1 len=4096
  mkdir -p "corpus/$t"
  [ "$t" = fdt ] && len=16384
  local args=(-max_total_time="$secs" -max_len="$len" -print_final_stats=1)
  case $t in
    transcript|config) args+=(-dict=dict/transcript.dict) ;;
    fdt) args+=(-dict=dict/fdt.dict) ;;
    bridge_rsp) args+=(-dict=dict/bridge_rsp.dict) ;;
  esac
  cargo fuzz run -s none "$t" "corpus/$t" "seeds/$t" -- "${args[@]}" >"logs/$t.log" 2>&1
}

# report TARGET RC: its summary, and the finding if there is one.
report() {
  local t=$1 rc=$2
  echo "== fuzz $t for ${secs}s"
  grep -E "^(stat::|#[0-9]+ +(DONE|INITED))|cov: [0-9]+ ft" "logs/$t.log" | grep -v "NEW\|REDUCE\|pulse" | tail -8 || true
  if [ "$rc" != 0 ]; then
    grep -E "panicked|ERROR|SUMMARY|Test unit" "logs/$t.log" || tail -20 "logs/$t.log"
    echo "fuzz $t: finding (see fuzz/artifacts/$t, fuzz/logs/$t.log)"
  fi
}

found=0
for ((i = 0; i < ${#targets[@]}; i += jobs)); do
  batch=("${targets[@]:i:jobs}")
  pids=()
  for t in "${batch[@]}"; do
    one "$t" &
    pids+=($!)
  done
  for k in "${!batch[@]}"; do
    rc=0
    wait "${pids[$k]}" || rc=$?
    report "${batch[$k]}" "$rc"
    [ "$rc" = 0 ] || found=1
  done
  [ "$found" = 0 ] || exit 1
done
