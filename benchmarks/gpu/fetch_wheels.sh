#!/usr/bin/env bash
# Download the wheels that benchmarks/gpu_check.sh installs on an offline GPU machine whose Python lacks them.
# Run it on a machine that reaches PyPI, in this checkout; it fills .whl/ (git-ignored), which then travels with the
# working tree to the GPU machine (for the lent machines: name ".whl" in the run's carry list).
#
#   bash benchmarks/gpu/fetch_wheels.sh              # the default list below
#   bash benchmarks/gpu/fetch_wheels.sh pyarrow      # the default list and more packages
#
# Target: CPython $GPU_CHECK_PYTHON_VERSION (default 3.12, the lent NVIDIA H200 machines' python3), manylinux x86-64.
# Versions: the ones installed in this checkout's .venv (what the CPU test suite ran), else the newest on PyPI.
# Default list: what hf_robattr and the checks import that the lent machines' image does not ship (datasets, evaluate,
# captum, quantus and their small dependencies), plus transformers and peft at the versions tested here.
set -euo pipefail
cd "$(dirname "$0")/../.."
packages=(datasets evaluate captum quantus dill multiprocess cachetools transformers peft "$@")
version=${GPU_CHECK_PYTHON_VERSION:-3.12}
venv_python=.venv/bin/python
platforms=()
for tag in manylinux_2_28 manylinux_2_27 manylinux_2_17 manylinux2014 manylinux1; do platforms+=(--platform "${tag}_x86_64"); done
mkdir -p .whl
for name in "${packages[@]}"; do
    pinned=""
    if [ -x "$venv_python" ]; then
        pinned=$("$venv_python" -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$name" 2>/dev/null || true)
    fi
    spec="$name${pinned:+==$pinned}"
    rm -f .whl/"$(echo "$name" | tr - _)"-*.whl .whl/"$name"-*.whl
    echo "fetch_wheels: $spec"
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$version" --implementation cp \
        "${platforms[@]}" -d .whl "$spec"
done
du -sh .whl
