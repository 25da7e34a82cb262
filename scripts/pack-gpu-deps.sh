#!/usr/bin/env bash
# Packs the build dependencies that a bare GPU machine without network lacks (fmt, nlohmann-json,
# CLI11, GoogleTest sources) into .deps/ by extracting their Debian packages; scripts/gpu-check.sh
# builds against .deps/ when it is present. Run on a Debian machine with network access.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf .deps && mkdir -p .deps/debs
(cd .deps/debs && apt-get download libfmt-dev libfmt9 nlohmann-json3-dev libcli11-dev googletest >/dev/null)
for deb in .deps/debs/*.deb; do dpkg -x "$deb" .deps; done
rm -rf .deps/debs
du -sh .deps
