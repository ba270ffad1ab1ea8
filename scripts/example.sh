#!/usr/bin/env bash
# Builds distilmd and runs the default example end to end.
set -euo pipefail
cd "$(dirname "$0")/.."
export DISTILMD_SHARED=${DISTILMD_SHARED:-$(cd .. && pwd)/shared}
scripts/build.sh
examples/quickstart.sh
