#!/usr/bin/env bash
# Installs what distilmd needs on Debian/Ubuntu: the build tools and libraries
# of the engine, and the Python packages the tests use. The CUDA Toolkit
# (nvcc, cuRAND) is optional: without it only the reference platform is built.
set -euo pipefail
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
packages=(build-essential cmake pkg-config libhdf5-dev libyaml-dev libcunit1-dev hdf5-tools
          python3 python3-numpy python3-torch python3-h5py python3-mdanalysis python3-pymbar)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
if ! command -v nvcc >/dev/null && [ ! -x /usr/local/cuda/bin/nvcc ]; then
  echo "note: nvcc not found; building the reference platform only (install the CUDA Toolkit for the GPU platform)"
fi
