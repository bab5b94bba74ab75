#!/usr/bin/env bash
# Install the optional `dft` extra (GPAW + gpaw-data) into a virtual environment:
#   bash .ci/install_dft.sh .venv/bin/python .venv/constraints.txt
# GPAW has no binary wheel: pip compiles its C++ extension against libxc, BLAS/LAPACK and FFTW
# (Debian: libxc-dev libopenblas-dev liblapack-dev libfftw3-dev g++). Missing Debian packages are
# installed with apt-get when this runs as root; otherwise it names them and fails.
# GPAW 26.7 compiles its .c files as C++ (-std=c++17): CC=g++ (docs/dft_oracle.md).
set -euo pipefail
py=${1:-.venv/bin/python}
constraints=${2:-.venv/constraints.txt}
if "$py" -c "import gpaw, gpaw_data" 2>/dev/null; then
    echo "dft extra: gpaw already installed"; exit 0
fi
pkgs=(libxc-dev libopenblas-dev liblapack-dev libfftw3-dev g++)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get install -y -q "${missing[@]}" >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q "${missing[@]}" >/dev/null; }
    else
        echo "dft extra: GPAW needs the system packages ${missing[*]} (install them, then rerun)" >&2; exit 1
    fi
fi
CC=g++ "$py" -m pip install -q -c "$constraints" "gpaw>=24.1" "gpaw-data>=1.0"
"$py" -c "import gpaw, gpaw_data; print('dft extra: gpaw', gpaw.__version__)"
