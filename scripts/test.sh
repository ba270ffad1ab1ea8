#!/usr/bin/env bash
# Builds distilmd and runs every test (CTest). Tests that need the shared data
# (DISTILMD_SHARED, default ../shared) or a GPU report "skipped" without them.
set -euo pipefail
cd "$(dirname "$0")/.."
export DISTILMD_SHARED=${DISTILMD_SHARED:-$(cd .. && pwd)/shared}
scripts/build.sh
ctest --test-dir "${BUILD_DIR:-build}" --output-on-failure -j"$(nproc)"
