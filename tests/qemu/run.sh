#!/usr/bin/env bash
# Functional tests of papr-scm inside QEMU, without a kernel: small firmware
# images (fw/*.S, assembled here with binutils-powerpc64-linux-gnu) issue
# the SCM hcalls and PMEM RTAS calls with `sc 1`; QEMU runs them under TCG
# and the runner reads their records through QMP.
#
# Usage: tests/qemu/run.sh QEMU_BINARY [QEMU_BINARY...] [TEST...]
#   Tests (all when none is named):
#     compare     hcalls.S and rtas-hotplug.S with papr-scm=on,
#                 papr-scm-profile=qemu equal papr-scm=off on the same binary,
#                 register by register and byte by byte; papr-scm=off meets
#                 the answers written in the firmware; `papr-scm replay` of
#                 papr-scm=off's calls answers the same
#     papr        the papr profile's own answers (QUERY_*, PERFORMANCE_STATS,
#                 the health mask, bind state)
#     hostile     >= 100 000 random SCM hcalls: QEMU alive, its papr-scm-trace
#                 replays with no mismatch
#     pmem-insns  dcbfps, dcbstps, phwsync, plwsync run to the end
#     device-del  device_del of an nvdimm the firmware releases
#   On a QEMU without papr-scm (stock QEMU, or `papr-scm=off` of the patched
#   one) the checks that need it print SKIP and the others check stock
#   QEMU's behaviour (the "before": program checks, refused device_del, the
#   wrapping-range abort).
#   Prints one line per check and `N passed, N failed, N skipped`.
#   Exit 0 when all passed, 1 on any failure, 77 (SKIP) when nothing failed
#   but a binary is missing, has no papr-scm, or the tools are missing.
#   Environment: KEEP=1 keeps the work directory; SEED=N, CALLS=N for the
#   hostile firmware; PAPR_SCM_BIN=path the papr-scm binary for replay
#   (default: this repository's, built with cargo).
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
ALL_TESTS=(compare papr hostile pmem-insns device-del)

bins=() tests=() missing=()
for a in "$@"; do
  if [[ " ${ALL_TESTS[*]} " == *" $a "* ]]; then
    tests+=("$a")
  elif [[ "$a" == */* || -e "$a" ]]; then
    if [ -x "$a" ] && [ -f "$a" ]; then bins+=("$a"); else missing+=("$a"); fi
  else
    echo "run.sh: '$a' is neither a QEMU binary nor a test (${ALL_TESTS[*]})" >&2
    exit 2
  fi
done
if [ ${#bins[@]} = 0 ] && [ ${#missing[@]} = 0 ]; then
  echo "usage: run.sh QEMU_BINARY [QEMU_BINARY...] [TEST...]" >&2
  exit 2
fi
for m in "${missing[@]}"; do echo "SKIP qemu: no QEMU binary at $m"; done
if [ ${#bins[@]} = 0 ]; then
  echo "0 passed, 0 failed, ${#missing[@]} skipped"
  exit 77
fi
for tool in python3 powerpc64-linux-gnu-as powerpc64-linux-gnu-ld powerpc64-linux-gnu-objcopy; do
  if ! command -v "$tool" >/dev/null; then
    echo "SKIP qemu: $tool is missing (apt-get install binutils-powerpc64-linux-gnu python3)"
    echo "0 passed, 0 failed, 1 skipped"
    exit 77
  fi
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/papr-scm-qemu-tests.XXXXXX")
cleanup() { if [ "${KEEP:-0}" = 1 ]; then echo "work directory kept: $WORK"; else rm -rf "$WORK"; fi; }
trap cleanup EXIT

# `papr-scm replay` checks QEMU's answers and the trace against the crate:
# this repository's, or PAPR_SCM_BIN (the crate QEMU links, if it differs).
if [ -n "${PAPR_SCM_BIN:-}" ]; then
  REPLAY=$PAPR_SCM_BIN
else
  REPLAY=$REPO/target/release/papr-scm
  if ! (cd "$REPO" && nice -n 10 cargo build --release -q --bin papr-scm) >"$WORK/cargo.log" 2>&1; then
    echo "(cargo build --release failed: the replay checks will fail; see $WORK/cargo.log)"
    REPLAY=
  fi
fi

out=$WORK/results
: >"$out"
for q in "${bins[@]}"; do
  tag=$("$q" --version 2>/dev/null | sed -n 's/^QEMU emulator version \([0-9.]*\).*/\1/p')
  tag=${tag:-$(basename "$q")}
  mkdir -p "$WORK/$tag"
  args=(--qemu "$q" --tag "qemu-$tag" --work "$WORK/$tag")
  [ -n "$REPLAY" ] && args+=(--replay "$REPLAY")
  [ -n "${SEED:-}" ] && args+=(--seed "$SEED")
  [ -n "${CALLS:-}" ] && args+=(--hostile-calls "$CALLS")
  python3 "$HERE/checks.py" "${args[@]}" "${tests[@]}" 2>&1 | tee -a "$out"
  if [ "${PIPESTATUS[0]}" != 0 ]; then
    echo "FAIL qemu-$tag: checks.py ended early" | tee -a "$out"
  fi
done

passed=$(grep -c '^ok ' "$out")
failed=$(grep -c '^FAIL ' "$out")
skipped=$(( $(grep -c '^SKIP ' "$out") + ${#missing[@]} ))
echo "$passed passed, $failed failed, $skipped skipped"
if [ "$failed" -gt 0 ]; then
  exit 1
elif [ "$skipped" -gt 0 ]; then
  exit 77
elif [ "$passed" = 0 ]; then
  echo "FAIL qemu: no check ran"
  exit 1
fi
exit 0
