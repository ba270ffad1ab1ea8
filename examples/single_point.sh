#!/usr/bin/env bash
# First example: energies and forces of three molecules with the 427k student
# model, evaluated as one batch. Writes examples/out/single_point.extxyz.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
shared=${DISTILMD_SHARED:-$top/../shared}
bin=${DISTILMD_BINARY:-$top/${BUILD_DIR:-build}/distilmd}
[ -d "$shared/models" ] || { echo "shared data not found at $shared (set DISTILMD_SHARED)" >&2; exit 1; }
mkdir -p "$here/out"
"$bin" eval --model "$shared/models/student_427k.onnx" --output "$here/out/single_point.extxyz" \
    "$shared/molecules/water.xyz" "$shared/molecules/ethanol.xyz" "$shared/molecules/aspirin.xyz"
echo "wrote $here/out/single_point.extxyz:"
grep -o 'energy=[^ ]*' "$here/out/single_point.extxyz" | paste -d' ' <(printf '%s\n' water ethanol aspirin) -
