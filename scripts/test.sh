#!/usr/bin/env bash
# Builds distilmd and runs every test (CTest). Tests that need the shared data
# (DISTILMD_SHARED, default ../shared) or a GPU report "skipped" without them.
# Extra arguments go to CMake (e.g. -DDISTILMD_SANITIZE=ON).
set -euo pipefail
cd "$(dirname "$0")/.."
export DISTILMD_SHARED=${DISTILMD_SHARED:-$(cd .. && pwd)/shared}
scripts/build.sh "$@"
build=${BUILD_DIR:-build}
status=0
ctest --test-dir "$build" --output-on-failure -j"$(nproc)" || status=$?
# CTest shows no output for skipped tests: say why each was skipped
log="$build/Testing/Temporary/LastTest.log"
if [ -f "$log" ] && grep -q "^skipped:" "$log"; then
  echo "why tests were skipped:"
  grep -h "^skipped:" "$log" | sort | uniq -c
fi
exit $status
