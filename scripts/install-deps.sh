#!/usr/bin/env bash
# Installs what Ember needs to build on Debian/Ubuntu: a C++20 compiler, CMake, Ninja, fmt,
# nlohmann-json, CLI11, GoogleTest, OpenBLAS (OpenMP build), Open MPI (data-parallel training). The CUDA toolkit is optional (install it from NVIDIA for the
# GPU backend). Runs apt-get as root or through sudo; otherwise prints the command to run.
set -euo pipefail

packages=(g++ cmake ninja-build libfmt-dev nlohmann-json3-dev libcli11-dev libgtest-dev libopenblas-openmp-dev
          libopenmpi-dev openmpi-bin)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: everything Ember needs is installed"
  exit 0
fi

install_line="apt-get update && apt-get install -y ${missing[*]}"
if [ "$(id -u)" -eq 0 ]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  sudo=(sudo)
else
  echo "install-deps: missing packages: ${missing[*]}" >&2
  echo "install-deps: run as root:  sudo sh -c '$install_line'" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}"
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
