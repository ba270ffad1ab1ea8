#!/bin/sh
# bench/output_overlap.sh — what writing H5MD frames costs an MD run: the same
# Langevin run (aspirin x REPLICAS, 427k model) with a frame every INTERVAL
# steps (positions, velocities, forces) and with no trajectory. Run on the
# device after `sh bench/run_gpu.sh build`.
set -eu
REPLICAS=${REPLICAS:-256}; STEPS=${STEPS:-2000}; INTERVAL=${INTERVAL:-10}
S=${DISTILMD_SHARED:-$PWD/.shared}
eval "$(sh "$S/device/setup.sh")"
tmp=$(mktemp -d)
for out in frames none; do
    cat >"$tmp/$out.yaml" <<EOT
model: $S/models/student_427k.onnx
platform: ${PLATFORM:-cuda}
steps: $STEPS
systems:
  - structure: $S/molecules/aspirin.xyz
    copies: $REPLICAS
integrator:
  type: langevin
  timestep: 0.5
  temperature: 300
velocities:
  temperature: 300
EOT
    if [ $out = frames ]; then
        printf 'output:\n  file: %s/traj.h5\n  interval: %s\n  fields: [position, velocity, force]\n' \
            "$tmp" "$INTERVAL" >>"$tmp/$out.yaml"
    fi
    printf '%-7s ' "$out"
    build-gpu/distilmd run "$tmp/$out.yaml" --quiet 2>&1 | tail -1
done
ls -la "$tmp/traj.h5" | awk '{print "trajectory bytes:", $5}'
rm -rf "$tmp"
