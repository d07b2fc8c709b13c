#!/usr/bin/env bash
# The exact commands behind every table of BENCHMARKS.md.
#
#   bench/run_benchmarks.sh                    # everything, at $BUDGET (default: medium)
#   BUDGET=default SEEDS=0,1,2 bench/run_benchmarks.sh
#   ONLY="crossval-synth harmful" bench/run_benchmarks.sh   # some steps only
#
# BENCHMARKS.md was made with several such invocations running side by side ("lanes", one torch
# thread each, on the 2-core machine) plus a few direct `rawadapt bench` commands; the exact list
# is in BENCHMARKS.md "How to reproduce", and bench/fill_benchmarks.py copies the tables in.
#
# Resumable: every protocol keeps its finished cells in $OUT/<step>/cells, so rerunning after an
# interruption (or with more --methods/--targets) computes only what is missing. A re-run with
# another budget/seed set into the same $OUT is refused (use another OUT, or RECOMPUTE=1).
# Each protocol folder gets results.{csv,json,md}, plots/ and report.html; $OUT/benchmarks.log
# records start/end time and load average of every step (the CPU may be shared).
set -euo pipefail
cd "$(dirname "$0")/.."

RA=${RA:-.venv/bin/rawadapt}
PY=${PY:-.venv/bin/python}
OUT=${OUT:-runs/benchmarks}
BUDGET=${BUDGET:-medium}           # tiny | quick | medium | default | demo (rawadapt.eval.protocols.settings)
SEEDS=${SEEDS:-0}
THREADS=${THREADS:-2}
POLYU=${POLYU:-../shared/data/polyu}
# four synth targets: two DSLRs (the paper's ELD/SID side) and two phones (its SIDD side)
TARGETS=${TARGETS:-SonyA7S2,NikonD850,IP,GP}
# targets of the single-sensor studies (the paper: Sony, Fuji, Nikon, Canon; Figure 3: G4 and Sony)
SINGLE_TARGETS=${SINGLE_TARGETS:-SonyA7S2,NikonD850}
SIZE_TARGETS=${SIZE_TARGETS:-SonyA7S2}
CALIB_TARGETS=${CALIB_TARGETS:-SonyA7S2,NikonD850,GP}
ONLY=${ONLY:-}
LAN_ARGS=${LAN_ARGS:-}             # extra `rawadapt bench lan` options, e.g. "--pretrain-iters 1000 --images 8"
RECOMPUTE=${RECOMPUTE:-0}

# every method of the synth cross-validation table (Table 1 shape; b2u ~21-26 min per target on one
# thread, DIP in its own step below); ablation variants have their
# own table (step "ablation")
CROSSVAL_METHODS=${CROSSVAL_METHODS:-noisy,finetune,target-only,joint,adl,adl-paired,adl-score,bm3d,nlm,wavelet,zsn2n,nbr2nbr,ain,mzsr,calib-ft,calib-adl,led,pmn,b2u}
# sRGB-capable methods for PolyU (real noise)
POLYU_METHODS=${POLYU_METHODS:-noisy,bm3d,nlm,wavelet,zsn2n,dip,nbr2nbr,b2u,target-only,finetune,joint,ain,mzsr,adl,adl-paired}

mkdir -p "$OUT"
COMMON=(--budget "$BUDGET" --seeds "$SEEDS" --threads "$THREADS" --keep-going)
if [ "$RECOMPUTE" = 1 ]; then COMMON+=(--recompute); fi
QUICK=()  # the LAN benchmarks have their own sizes: --quick for the small budgets
if [ "$BUDGET" = quick ] || [ "$BUDGET" = tiny ]; then QUICK=(--quick); fi

log() { echo "[$(date '+%F %T')] load $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo n/a): $*" | tee -a "$OUT/benchmarks.log"; }
want() { [ -z "$ONLY" ] || [[ " $ONLY " == *" $1 "* ]]; }
step() {  # step NAME COMMAND...
  local name=$1; shift
  want "$name" || return 0
  log "start $name: $*"
  local t0=$SECONDS
  "$@"
  log "end $name ($((SECONDS - t0)) s)"
}

log "$($RA --version) budget=$BUDGET seeds=$SEEDS threads=$THREADS targets=$TARGETS host=$(hostname) cpus=$(nproc)"

# ADL paper Table 1 shape: leave-one-sensor-out on synth (RAW), every method
step crossval-synth "$RA" bench crossval --data synth --targets "$TARGETS" --methods "$CROSSVAL_METHODS" \
  "${COMMON[@]}" --out "$OUT/crossval-synth"
# DIP costs ~3 min per test image on this CPU (200 iterations of its 32-channel network on a
# 192x192 packed image), ~3 h for the table above: its row has its own run on 4 test images
# per target (the noisy input's PSNR on the same images is reported next to it)
step dip-synth "$RA" bench crossval --data synth --targets "$TARGETS" --methods noisy,dip --test-pairs 4 \
  "${COMMON[@]}" --out "$OUT/dip-synth"
# Table 4: ADL ablations (the paper: Sony, Fuji, Nikon, Canon)
step ablation "$RA" bench ablation --data synth --targets "$SINGLE_TARGETS" "${COMMON[@]}" --out "$OUT/ablation"
# Table 5: harmful sources (base, +harmful1, +harmful2)
step harmful "$RA" bench harmful --data synth --targets "$SINGLE_TARGETS" \
  --methods noisy,finetune,adl,adl-paired "${COMMON[@]}" --out "$OUT/harmful"
# Figure 3: PSNR vs |T_adp| (the paper: G4 and Sony)
step target-size "$RA" bench target-size --data synth --targets "$SIZE_TARGETS" --sizes 2,5,10,20,50 \
  "${COMMON[@]}" --out "$OUT/target-size"
# Table 2(a): calibration-based training, fine-tuned on one sensor vs ADL with all sensors
step calibration "$RA" bench calibration --data synth --targets "$CALIB_TARGETS" \
  "${COMMON[@]}" --out "$OUT/calibration"
# PolyU (real sRGB noise): each camera held out, 6 target pairs, sources = the other cameras ...
step crossval-polyu "$RA" bench crossval --data "polyu:$POLYU" --target-pairs 6 --methods "$POLYU_METHODS" \
  "${COMMON[@]}" --out "$OUT/crossval-polyu"
# ... and with the ten simulated synth-srgb sensors as extra sources
step crossval-polyu-synth "$RA" bench crossval --data "polyu:$POLYU+synth-srgb" --target-pairs 6 \
  --methods "$POLYU_METHODS" "${COMMON[@]}" --out "$OUT/crossval-polyu-synth"
# LAN Table 1 and Table 2
step lan "$RA" bench lan "${QUICK[@]}" $LAN_ARGS --out "$OUT/lan" --threads "$THREADS"
step lan-cost "$RA" bench lan-cost "${QUICK[@]}" --out "$OUT/lan-cost" --threads "$THREADS"
# speed, noise simulation, ADL iteration cost (Markdown to stdout, numbers to JSON)
step speed sh -c "$PY bench/bench_speed.py --out $OUT/speed.json > $OUT/speed.md"
step noise sh -c "$PY bench/bench_noise.py --synth --json > $OUT/noise.json"
step adl-cost sh -c "$PY bench/bench_adl_cost.py --out $OUT/adl_cost.json > $OUT/adl_cost.md"
# make demo on a fresh cache (synth build included): its wall time is the "< 10 minutes" claim
step demo sh -c "cache=\$(mktemp -d) && RAWADAPT_CACHE=\$cache /usr/bin/time -v $RA demo --out $OUT/demo \
  > $OUT/demo.txt 2> $OUT/demo.time; rc=\$?; rm -rf \$cache; exit \$rc"

log "done; tables in $OUT/*/results.md, pages in $OUT/*/report.html"
