#!/bin/sh
# bench/run_gpu.sh — the whole GPU sequence on the device machine, in one call:
# build (sm_90, Release), the CUDA tests, the full CTest suite, `distilmd
# bench` and the PyTorch baseline on the same card, with logs and JSON in
# $OUT (default ./out). Run from the repository root:
#
#   sh bench/run_gpu.sh [STEP ...]      steps: build test ctest bench torch profile
#                                       (default: all but profile, in that order)
#
# Environment: DISTILMD_SHARED (default ./.shared, else ../shared),
# CTEST_REGEX (only the CTest tests it matches), BENCH_ARGS (extra arguments of distilmd bench), TORCH_ARGS (of
# bench/torch_baseline.py), PROFILE_BATCHES (batch sizes that `profile` runs
# under Nsight Compute, default "1 16 1024"; 427k model; per-kernel times),
# PYTHON (default python3, which has torch there).
set -u
OUT=${OUT:-$PWD/out}
mkdir -p "$OUT"
if [ -z "${DISTILMD_SHARED:-}" ]; then
    if [ -d .shared ]; then DISTILMD_SHARED=$PWD/.shared; else DISTILMD_SHARED=$PWD/../shared; fi
fi
export DISTILMD_SHARED
PYTHON=${PYTHON:-python3}
STEPS=${*:-build test ctest bench torch}
status=0

eval "$(sh "$DISTILMD_SHARED/device/setup.sh")"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,power.draw,temperature.gpu \
    --format=csv 2>&1

for step in $STEPS; do
    echo "=== $step"
    case $step in
    build)
        cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 -DDISTILMD_PYTHON="$(command -v "$PYTHON")" \
            >"$OUT/build.log" 2>&1 &&
            cmake --build build-gpu -j16 >>"$OUT/build.log" 2>&1
        rc=$?
        grep -E "warning|error" "$OUT/build.log" | grep -v "format-truncation" | head -20
        if [ $rc -ne 0 ]; then tail -40 "$OUT/build.log"; exit 1; fi
        ;;
    test)
        start=$(date +%s)
        build-gpu/tests/test_cuda_model >"$OUT/test_cuda_model.log" 2>&1
        rc=$?
        grep -E "^GPU|^  |Suite|Test:|passed|failed|FAIL|skipped" "$OUT/test_cuda_model.log" | cut -c1-220
        echo "test_cuda_model: exit $rc in $(( $(date +%s) - start )) s"
        [ $rc -ne 0 ] && status=1
        ;;
    ctest)
        ctest --test-dir build-gpu --output-on-failure -j8 --timeout 600 -E test_cuda_model \
            ${CTEST_REGEX:+-R "$CTEST_REGEX"} >"$OUT/ctest.log" 2>&1 || status=1
        grep -E "tests passed|Passed|Failed|Skipped|\*\*\*" "$OUT/ctest.log" | tail -40
        ;;
    bench)
        # shellcheck disable=SC2086
        build-gpu/distilmd bench --stages --json "$OUT/bench.json" ${BENCH_ARGS:-} \
            >"$OUT/bench.txt" 2>&1 || status=1
        grep -v "^    " "$OUT/bench.txt"
        ;;
    torch)
        # shellcheck disable=SC2086
        PYTHONUNBUFFERED=1 $PYTHON bench/torch_baseline.py --shared "$DISTILMD_SHARED" \
            --json "$OUT/torch.json" ${TORCH_ARGS:-} >"$OUT/torch.txt" 2>&1 || status=1
        cat "$OUT/torch.txt"
        ;;
    profile)
        NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
        : >"$OUT/ncu.csv"
        for b in ${PROFILE_BATCHES:-1 16 1024}; do
            echo "--- batch $b"
            "$NCU" --metrics gpu__time_duration.sum --cache-control none --clock-control none \
                --csv build-gpu/distilmd bench -m "$DISTILMD_SHARED/models/student_427k.onnx" \
                --batches "$b" --warmup 1 --reps 1 >"$OUT/ncu_raw.csv" 2>&1 || status=1
            cat "$OUT/ncu_raw.csv" >>"$OUT/ncu.csv"
            $PYTHON bench/ncu_summary.py "$OUT/ncu_raw.csv"
        done
        rm -f "$OUT/ncu_raw.csv"
        ;;
    *)
        echo "unknown step '$step' (build test ctest bench torch profile)"
        exit 2
        ;;
    esac
done
exit $status
