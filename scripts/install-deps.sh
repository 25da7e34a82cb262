#!/usr/bin/env bash
# Installs what Ember needs to build on Debian/Ubuntu, saying what it installs first:
#   Debian packages: a C++20 compiler, CMake, Ninja, fmt, nlohmann-json, CLI11, GoogleTest,
#   OpenBLAS (OpenMP build), Open MPI (data-parallel training), ONNX and protobuf (ONNX export),
#   Python's headers and venv.
#   With --python, also the project's Python virtual environment .venv (about 500 MB from PyPI:
#   nanobind, numpy, scikit-learn, pytest, pandas, and ONNX Runtime and onnx, which the ONNX export's
#   tests run the exported models with), which CMake uses to build and test the Python
#   package; the test command asks for it, the quick start does not need it.
# The CUDA toolkit is optional (install it from NVIDIA for the GPU backend). Runs apt-get as root
# or through sudo; otherwise prints the command to run.
set -euo pipefail

with_python=0
for argument in "$@"; do
  case "$argument" in
    --python) with_python=1 ;;
    -h|--help)
      sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
      echo "Usage: scripts/install-deps.sh [--python]"
      exit 0 ;;
    *) echo "install-deps: unknown argument '$argument'; use --python or --help" >&2; exit 2 ;;
  esac
done

packages=(g++ cmake ninja-build libfmt-dev nlohmann-json3-dev libcli11-dev libgtest-dev libopenblas-openmp-dev
          libopenmpi-dev openmpi-bin libonnx-dev libprotobuf-dev python3-dev python3-venv)
python_packages=(nanobind numpy scikit-learn pytest pandas onnxruntime onnx)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
root="$(cd "$(dirname "$0")/.." && pwd)"
python_environment() {
  local venv="$root/.venv"
  if [ "$with_python" -eq 0 ]; then
    [ -x "$venv/bin/python" ] ||
      echo "install-deps: not making .venv (the Python package and its tests): run scripts/install-deps.sh --python for them"
    return 0
  fi
  if [ ! -x "$venv/bin/python" ]; then
    echo "install-deps: making $venv and installing ${python_packages[*]} from PyPI into it (about 400 MB)"
    python3 -m venv "$venv" || { echo "install-deps: could not make $venv; the Python package is not built" >&2; return 0; }
  fi
  "$venv/bin/python" -m pip install -q --disable-pip-version-check "${python_packages[@]}" ||
    echo "install-deps: pip could not install the Python tools into $venv; the Python package is not built" >&2
}

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: every Debian package Ember needs is installed"
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
echo "install-deps: installing ${#missing[@]} Debian packages (and what they depend on): ${missing[*]}"
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
python_environment
