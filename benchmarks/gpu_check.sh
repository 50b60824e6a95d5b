#!/usr/bin/env bash
# gpu_check: every GPU-only check of hf_robattr in one run, printed as ONE markdown table (check, result, numbers,
# pass/fail). Issue 15; docs/gpu_check.md says what each row means and which targets it judges.
#
#   bash benchmarks/gpu_check.sh                    # on a machine with an NVIDIA GPU: the real checks, < 8 minutes
#   bash benchmarks/gpu_check.sh --smoke            # no GPU needed: every check at tiny sizes on the CPU (plumbing)
#   bash benchmarks/gpu_check.sh --only scoring attention   # a subset; names: cuda_tests scoring attention bf16
#                                                   #   ddp fsdp train_vit study
#   bash benchmarks/gpu_check.sh --dry-run          # each check's commands and time limit; runs nothing
#   GPU_CHECK_DEVICE=cpu bash benchmarks/gpu_check.sh   # the same as --smoke
#
# Assumptions:
# - Offline. Nothing is downloaded: the HF offline switches are set, every check uses embedded data and tiny models.
# - It runs from the repository root of a checkout (it cd's there) and imports hf_robattr from that checkout (the
#   root goes first on PYTHONPATH): no install of the package is needed.
# - Python: $GPU_CHECK_PYTHON if set; else the first of the checkout's .venv/bin/python and python3 on PATH whose
#   torch sees CUDA (--smoke: the first with torch). On the lent H200 machines python3 is Python 3.12 with CUDA
#   torch, transformers, accelerate, pytest, scipy, sklearn and matplotlib.
# - Packages that Python lacks travel as wheels in .whl/ at the root, made beforehand where PyPI is reachable with
#   `bash benchmarks/gpu/fetch_wheels.sh` (datasets, evaluate, captum, quantus, ...; ~16 MB). Unless the chosen Python
#   is the checkout's .venv, they are installed with pip --no-index into a temporary folder put first on PYTHONPATH.
# - Time: every check has its own time limit and the checks together a budget (GPU 420 s, --budget-s to change);
#   with the set-up the GPU run stays under 8 minutes. A check that runs out of time is killed and fails.
# - Output: run folders and full logs under outputs/gpu_check/ (git-ignored). The table goes to $OUT/gpu_check.md
#   when $OUT is set (plus the tail of every log in $OUT/gpu_check_logs.txt), else to outputs/gpu_check.md.
# Exit status: 0 every check passed, or no GPU is present (one line says so; nothing runs); 1 a check failed;
# 2 bad usage or a set-up that failed.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 2

mode=gpu
dry_run=0
forward=()
while [ $# -gt 0 ]; do
    case "$1" in
        --smoke) mode=smoke ;;
        --dry-run) dry_run=1; forward+=("$1") ;;
        -h | --help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) forward+=("$1") ;;
    esac
    shift
done
case "${GPU_CHECK_DEVICE:-}" in
    cpu) mode=smoke ;;
    "" | cuda | gpu) ;;
    *) echo "gpu_check: GPU_CHECK_DEVICE must be 'cpu' or 'cuda', got '${GPU_CHECK_DEVICE}'" >&2; exit 2 ;;
esac

export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_EVALUATE_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1
export TOKENIZERS_PARALLELISM=false MPLBACKEND=Agg PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
export TRANSFORMERS_VERBOSITY="${TRANSFORMERS_VERBOSITY:-warning}"

# One start of a candidate Python (importing torch takes seconds): "<torch version> <1 if it sees CUDA, else 0>",
# nothing when it has no torch.
probe() { "$1" -c 'import torch; print(torch.__version__, int(torch.cuda.is_available()))' 2>/dev/null | tail -n 1; }

# The first Python with torch (unless --smoke: the first whose torch sees CUDA, if any does).
candidates=("${GPU_CHECK_PYTHON:-}")
[ -n "${GPU_CHECK_PYTHON:-}" ] || candidates=("$PWD/.venv/bin/python" "$(command -v python3 || true)")
python=""
found=""
for candidate in "${candidates[@]}"; do
    [ -n "$candidate" ] && [ -x "$candidate" ] || continue
    answer=$(probe "$candidate") && [ -n "$answer" ] || continue
    [ -n "$python" ] || { python=$candidate; found=$answer; }
    if [ $mode = gpu ] && [ "${answer##* }" = 1 ]; then
        python=$candidate
        found=$answer
        break
    fi
    [ $mode = smoke ] && break
done
if [ -z "$python" ]; then
    echo "gpu_check: no Python with torch found (tried: ${candidates[*]})" >&2
    exit 2
fi

if [ $mode = gpu ] && [ $dry_run = 0 ] && [ "${found##* }" != 1 ]; then
    echo "gpu_check: no GPU present (torch ${found% *} at $python sees no CUDA device): nothing checked; 'bash benchmarks/gpu_check.sh --smoke' runs the checks at tiny sizes on the CPU."
    exit 0
fi

site=""
prefix=$("$python" -c 'import os, sys; print(os.path.realpath(sys.prefix))')
if [ "$prefix" != "$(realpath -m .venv)" ] && compgen -G ".whl/*.whl" >/dev/null; then
    site="${TMPDIR:-/tmp}/gpu_check_site"
    echo "gpu_check: installing the carried wheels in .whl/ into $site" >&2
    if ! "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" .whl/*.whl; then
        echo "gpu_check: installing the wheels in .whl/ failed (see above)" >&2
        exit 2
    fi
fi
export PYTHONPATH="${site:+$site:}$PWD${PYTHONPATH:+:$PYTHONPATH}"

missing=$("$python" -c '
import importlib.util
names = ["hf_robattr", "transformers", "accelerate", "datasets", "evaluate", "captum", "quantus", "pytest", "scipy", "sklearn"]
print(" ".join(n for n in names if importlib.util.find_spec(n) is None))' 2>/dev/null)
if [ -n "$missing" ]; then
    echo "gpu_check: $python lacks: $missing (checks that need them will fail; bring them with benchmarks/gpu/fetch_wheels.sh)" >&2
fi

outputs=()
if [ -n "${OUT:-}" ]; then
    outputs=(--table "$OUT/gpu_check.md" --logs-out "$OUT/gpu_check_logs.txt")
fi
"$python" benchmarks/gpu/run_checks.py --mode $mode "${outputs[@]}" "${forward[@]}"
