#!/usr/bin/env bash
# Installs what Ember needs to build on Debian/Ubuntu: a C++20 compiler, CMake, Ninja, fmt,
# nlohmann-json, CLI11, GoogleTest, OpenBLAS (OpenMP build), Open MPI (data-parallel training). The CUDA toolkit is optional (install it from NVIDIA for the
# GPU backend). Runs apt-get as root or through sudo; otherwise prints the command to run. Then
# makes the project's Python virtual environment, .venv (nanobind, numpy, scikit-learn, pytest,
# pandas from PyPI), which CMake uses to build and test the Python package.
set -euo pipefail

packages=(g++ cmake ninja-build libfmt-dev nlohmann-json3-dev libcli11-dev libgtest-dev libopenblas-openmp-dev
          libopenmpi-dev openmpi-bin python3-dev python3-venv)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
root="$(cd "$(dirname "$0")/.." && pwd)"
python_environment() {
  local venv="$root/.venv"
  if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv" || { echo "install-deps: could not make $venv; the Python package is not built" >&2; return 0; }
  fi
  "$venv/bin/python" -m pip install -q --disable-pip-version-check nanobind numpy scikit-learn pytest pandas ||
    echo "install-deps: pip could not install the Python tools into $venv; the Python package is not built" >&2
}

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: every package Ember needs is installed"
  python_environment
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
python_environment
