#!/usr/bin/env bash
# Installs the SLURM daemons and clients the SLURM tests run against (Debian, as root).
# Idempotent: returns at once when sbatch, slurmctld and slurmd are already there.
# The packages' own services are never started here; tests/slurm/cluster.py starts
# private daemons with a config in a temp dir.
set -euo pipefail
if command -v sbatch >/dev/null && command -v slurmctld >/dev/null && command -v slurmd >/dev/null; then
  echo "tests/slurm/install.sh: SLURM already installed ($(dpkg-query -W -f='${Version}' slurm-client 2>/dev/null || echo '?'))"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "tests/slurm/install.sh: needs root (apt-get); run it as root or with sudo" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# policy-rc.d 101 keeps dpkg from starting the packaged services (no systemd in CI
# containers, and their /etc config would clash with the tests' private cluster).
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy" && created_policy=1
fi
trap 'if [ "$created_policy" = 1 ]; then rm -f "$policy"; fi' EXIT
apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null
echo "tests/slurm/install.sh: installed slurm $(dpkg-query -W -f='${Version}' slurm-client)"
