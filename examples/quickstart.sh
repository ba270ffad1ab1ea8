#!/usr/bin/env bash
# The default example, end to end: a single-point evaluation, then 1 ps of
# Langevin dynamics of six small molecules in one batch, written as H5MD.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
export DISTILMD_SHARED=$(cd "${DISTILMD_SHARED:-$top/../shared}" && pwd)
bin=${DISTILMD_BINARY:-$top/${BUILD_DIR:-build}/distilmd}
mkdir -p "$here/out"
"$here/single_point.sh"
echo
echo "== 1 ps of Langevin dynamics (examples/quickstart.yaml) =="
"$bin" run "$here/quickstart.yaml"
echo "wrote $here/out/quickstart.h5 (H5MD; checkpoint in $here/out/quickstart.chk)"
if command -v h5dump >/dev/null; then
  echo "potential energies of the last frame (eV, one per replica):"
  h5dump -A 0 -d /observables/potential_energy/value -s "40,0" -c "1,6" "$here/out/quickstart.h5" \
    | grep '(40,0)'
fi
