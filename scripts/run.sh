#!/usr/bin/env bash
# Install what is missing, build herald (Release), and serve the default app on
# http://localhost:3000. Extra arguments go to herald (see herald --help).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release -DHERALD_TESTS=OFF -DHERALD_E2E=OFF >/dev/null
cmake --build build-release -j"$(nproc)"
exec ./build-release/herald --port 3000 --public public "$@"
