#!/usr/bin/env bash
# Create bench/.venv-supervisord (supervisor 4.3.x from PyPI) from scratch if missing.
# Usage: bench/setup.sh [--force]
set -euo pipefail
exec "${PYTHON:-python3}" "$(dirname "$0")/setup_env.py" "$@"
