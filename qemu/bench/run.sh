#!/usr/bin/env bash
# Both tables of BENCHMARKS.md's "Inside QEMU", on the QEMU 10.0 that links
# papr-scm (qemu/build.sh 10.0):
#   1. instructions per SCM hcall from spapr_hypercall's entry to its return
#      (callgrind, cost.py): papr-scm=off (QEMU's handlers) and papr-scm=on
#      in both profiles, 1 and 32 NVDIMMs, with the per-function profile of
#      every call in OUTDIR/profile (READ_METADATA's printed here);
#   2. what the guest sees (guest.sh): Linux 6.1's probe to /dev/pmemN and
#      `ndctl read-labels`, medians of RUNS boots (default 5), papr-scm=off
#      and =on, 1 and 8 NVDIMMs.
#
# Usage: qemu/bench/run.sh [OUTDIR]
#   QEMU=path  the binary (default: qemu/build.sh 10.0's, built if needed)
#   GUEST=0    skip the guest table (it boots Linux 24 times under TCG,
#              about 7 minutes)
#   RECORD=1   rewrite qemu/bench/counts.txt, the counts .ci/run guards
# Exit 0 when everything ran and answered as expected, 1 on a failure, 77
# when a tool, the QEMU build or the guest kit is missing.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
OUT=${1:-$(mktemp -d "${TMPDIR:-/tmp}/papr-scm-qemu-bench.XXXXXX")}
mkdir -p "$OUT"
if [ -z "${QEMU:-}" ]; then
  QEMU=$(bash "$REPO/qemu/build.sh" 10.0 2>"$OUT/qemu-build.log" | tail -1)
  rc=${PIPESTATUS[0]}
  [ "$rc" = 77 ] && { echo "SKIP qemu-bench: $(grep -m1 SKIP "$OUT/qemu-build.log")"; exit 77; }
  [ "$rc" = 0 ] || { echo "qemu-bench: qemu/build.sh 10.0 failed (see $OUT/qemu-build.log)"; exit 1; }
fi

echo "=== 1. instructions per SCM hcall, spapr_hypercall entry to return ($QEMU)"
args=("$QEMU" --work "$OUT/callgrind" --profile-dir "$OUT/profile" --json "$OUT/counts.json"
      --check "$HERE/counts.txt")
[ "${RECORD:-0}" = 1 ] && args+=(--record "$HERE/counts.txt")
nice -n 10 python3 "$HERE/cost.py" "${args[@]}"
rc=$?
[ "$rc" = 0 ] || exit "$rc"
# The callgrind dumps are large in number; the profiles and counts stay.
rm -rf "$OUT/callgrind"

for c in off on-papr; do
  echo
  echo "--- READ_METADATA 8 B, $c, 1 NVDIMM: instructions per call, inclusive (callgrind_annotate)"
  cat "$OUT/profile/read_metadata_8-$c-1.txt"
done
echo
echo "--- the FFI shim, from H_SCM_HEALTH's profile (on-papr, 1 NVDIMM)"
python3 - "$OUT/profile/health-on-papr-1.txt" <<'EOF'
import sys
incl = {}
for line in open(sys.argv[1]):
    n, fn = line.split(None, 1)
    incl.setdefault(fn.strip(), float(n))
h, c = incl.get('h_papr_scm'), incl.get('papr_scm_hcall')
handler = next((v for k, v in incl.items() if k.endswith('::health')), None)
if None not in (h, c, handler):
    print('h_papr_scm (QEMU side, the patch series): %.0f, papr_scm_hcall around the handler: %.0f, '
          'the handler (Machine::health): %.0f' % (h - c, c - handler, handler))
EOF

if [ "${GUEST:-1}" = 0 ]; then
  echo
  echo "(GUEST=0: no guest table)"
  exit 0
fi
echo
echo "=== 2. what the guest sees (wall clock, medians of ${RUNS:-5} boots, min-max)"
bash "$HERE/guest.sh" "$QEMU" "$OUT/guest"
