#!/bin/sh
# bench/run_gpu_md.sh — MD measurements on the device machine, after
# `sh bench/run_gpu.sh build` (uses build-gpu/distilmd). Logs and JSON in $OUT.
#
#   sh bench/run_gpu_md.sh [STEP ...]    steps: md remd nve remd_example
#
#   md            MD steps/s for 1, 16, 256, 1024 replicas of the 17-molecule
#                 mix (427k model), with the force evaluation alone beside it
#   remd          alanine dipeptide, 16..1024 replicas in one batch vs the same
#                 replicas run one at a time (one context each); models
#                 REMD_MODELS (default 427k; e.g. "427k 77k 21k")
#   nve           NVE drift and fluctuation, benzene and aspirin, 0.5 and 0.25 fs
#   remd_example  configs/remd_alanine_dipeptide.yaml (8 rungs, 300-600 K) on cuda
#   fe            λ sweeps on cuda: configs/fe_harmonic.yaml (known answer) and
#                 4000 steps of configs/fe_decouple_ethanol.yaml (16 windows), analysed
set -u
OUT=${OUT:-$PWD/out}
mkdir -p "$OUT"
if [ -z "${DISTILMD_SHARED:-}" ]; then
    if [ -d .shared ]; then DISTILMD_SHARED=$PWD/.shared; else DISTILMD_SHARED=$PWD/../shared; fi
fi
export DISTILMD_SHARED
PYTHON=${PYTHON:-python3}
eval "$(sh "$DISTILMD_SHARED/device/setup.sh")"
BIN=build-gpu/distilmd
M=$DISTILMD_SHARED/molecules
MIX=$M/water.xyz,$M/ammonia.xyz,$M/methane.xyz,$M/ethanol.xyz,$M/benzene.xyz,$M/water_cluster_3.xyz,$M/water_cluster_5.xyz,$M/water_cluster_10.xyz,$M/ethane.xyz,$M/butane.xyz,$M/hexane.xyz,$M/naphthalene.xyz,$M/anthracene.xyz,$M/glycine.xyz,$M/alanine.xyz,$M/adenine.xyz,$M/guanine.xyz
MODEL=$DISTILMD_SHARED/models/student_427k.onnx
status=0
for step in ${*:-md remd nve remd_example fe}; do
    echo "=== $step"
    case $step in
    md)
        $BIN bench --md --model "$MODEL" --molecules "$MIX" --replicas 1,16,256,1024 \
            --steps ${MD_STEPS:-500} --json "$OUT/md.json" 2>&1 | tee "$OUT/md.txt" || status=1
        ;;
    remd)
        for m in ${REMD_MODELS:-427k}; do
            $BIN bench --md --model "$DISTILMD_SHARED/models/student_$m.onnx" \
                --molecules "$M/alanine_dipeptide.xyz" --replicas 1,16,64,256,1024 \
                --steps ${MD_STEPS:-500} --one-at-a-time \
                --json "$OUT/remd_$m.json" 2>&1 | tee "$OUT/remd_$m.txt" || status=1
        done
        ;;
    nve)
        $PYTHON bench/nve_drift.py --binary $BIN --platform cuda --ps ${NVE_PS:-20} \
            --json "$OUT/nve.json" 2>&1 | tee "$OUT/nve.txt" || status=1
        ;;
    remd_example)
        tmp=$(mktemp -d)
        start=$(date +%s)
        $BIN run configs/remd_alanine_dipeptide.yaml --platform cuda --output "$tmp/remd.h5" \
            ${REMD_STEPS:+--steps $REMD_STEPS} >"$OUT/remd_example.txt" 2>&1 || status=1
        echo "wall $(( $(date +%s) - start )) s" >>"$OUT/remd_example.txt"
        $BIN demux "$tmp/remd.h5" --output-prefix "$tmp/demux" >>"$OUT/remd_example.txt" 2>&1 || status=1
        ls "$tmp" >>"$OUT/remd_example.txt"
        grep -v "^step " "$OUT/remd_example.txt" | tail -40
        rm -rf "$tmp"
        ;;
    fe)
        tmp=$(mktemp -d)
        sed -e "s|file: fe_harmonic.h5|file: $tmp/h.h5|; s|file: fe_harmonic.chk|file: $tmp/h.chk|" \
            configs/fe_harmonic.yaml >"$tmp/h.yaml"
        $BIN run "$tmp/h.yaml" --platform cuda --quiet 2>&1 | tail -1 | tee "$OUT/fe.txt"
        $BIN analyze "$tmp/h.h5" --discard-ps 10 | tail -6 | tee -a "$OUT/fe.txt"
        sed -e "s|file: fe_decouple_ethanol.h5|file: $tmp/d.h5|; s|file: fe_decouple_ethanol.chk|file: $tmp/d.chk|" \
            -e "s|structure: ../examples|structure: $PWD/examples|" configs/fe_decouple_ethanol.yaml >"$tmp/d.yaml"
        $BIN run "$tmp/d.yaml" --platform cuda --steps ${FE_STEPS:-4000} --quiet 2>&1 | tail -1 | tee -a "$OUT/fe.txt"
        $BIN analyze "$tmp/d.h5" | tail -6 | tee -a "$OUT/fe.txt"
        rm -rf "$tmp"
        ;;
    *) echo "unknown step $step"; status=1 ;;
    esac
done
exit $status
