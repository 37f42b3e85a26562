#!/usr/bin/env bash
# Creates .venv in the repo with the pinned stack and fetches the demo data.
# Usage: `source install.sh` (installs if needed, then activates .venv) or `bash install.sh`.
# Idempotent: a second run only checks stamps and returns in a second or two.
_xbert_install() (
  set -euo pipefail
  cd "$(dirname "${BASH_SOURCE[0]}")"
  local py=${PYTHON:-python3}
  # pip on these machines warns about every missing local index folder: keep the log readable.
  quiet() { "$@" 2>&1 | { grep -v 'is ignored: it is neither a file nor a directory' || true; }; }
  # pyproject.toml too: a change of the package layout must reinstall the editable package.
  local stamp=.venv/.installed-$(cat envs/requirements.txt envs/constraints.txt pyproject.toml | sha1sum | cut -c1-12)
  if [ ! -f "$stamp" ]; then
    echo "install.sh: creating .venv and installing the pinned stack (a few minutes, once)"
    [ -x .venv/bin/python ] || "$py" -m venv .venv
    quiet .venv/bin/python -m pip install -q --upgrade pip
    # torch first and alone, so deepspeed finds it instead of pulling a build of its own. PyPI's
    # Linux wheel carries CUDA (right on a GPU machine); on a CPU-only machine set
    # XBERT_TORCH_INDEX=https://download.pytorch.org/whl/cpu for the small CPU build.
    quiet .venv/bin/python -m pip install -q ${XBERT_TORCH_INDEX:+--index-url "$XBERT_TORCH_INDEX"} torch==2.13.0
    quiet .venv/bin/python -m pip install -q -r envs/requirements.txt -c envs/constraints.txt
    PYTHONWARNINGS=ignore quiet .venv/bin/python -m pip install -q --no-deps -e .
    rm -f .venv/.installed-* && touch "$stamp"
  fi
  .venv/bin/python -m workflow_scripts.fetch_demo_data resources
)
_xbert_install || { echo "install.sh: failed" >&2; return 1 2>/dev/null || exit 1; }
unset -f _xbert_install
# Activate only when sourced; `bash install.sh` just installs.
if [ "${BASH_SOURCE[0]}" != "$0" ]; then
  source "$(dirname "${BASH_SOURCE[0]}")/.venv/bin/activate"
fi
