#!/usr/bin/env bash
# Creates .venv in the repo with the pinned stack and fetches the demo data.
# Usage: `source install.sh` (installs if needed, then activates .venv) or `bash install.sh`.
# Idempotent: a second run only checks stamps and returns in a second or two.
_xbert_install() (
  set -euo pipefail
  cd "$(dirname "${BASH_SOURCE[0]}")"
  local py=${PYTHON:-python3}
  local stamp=.venv/.installed-$(cat envs/requirements.txt envs/constraints.txt | sha1sum | cut -c1-12)
  if [ ! -f "$stamp" ]; then
    echo "install.sh: creating .venv and installing the pinned stack (a few minutes, once)"
    [ -x .venv/bin/python ] || "$py" -m venv .venv
    .venv/bin/python -m pip install -q --upgrade pip
    # torch first and alone: on a CPU machine this pin resolves to the CPU wheel.
    .venv/bin/python -m pip install -q torch==2.13.0
    .venv/bin/python -m pip install -q -r envs/requirements.txt -c envs/constraints.txt
    .venv/bin/python -m pip install -q --no-deps -e .
    rm -f .venv/.installed-* && touch "$stamp"
  fi
  .venv/bin/python -m workflow_scripts.fetch_demo_data resources
)
_xbert_install || { echo "install.sh: failed" >&2; return 1 2>/dev/null || exit 1; }
unset -f _xbert_install
# Activate only when sourced; `bash install.sh` just installs.
if [ "${BASH_SOURCE[0]}" != "$0" ]; then
  source "$(dirname "${BASH_SOURCE[0]}")/.venv/bin/activate"
  export DS_ACCELERATOR=${DS_ACCELERATOR:-$(python -c 'import torch;print("cuda" if torch.cuda.is_available() else "cpu")')}
fi
