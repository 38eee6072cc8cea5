#!/usr/bin/env bash
# Install faultreg from the checkout into the freshly created conda environment. Snakemake
# runs this script in the workflow's working directory, the repository root.
# NOTE: not exercised in CI, which has no conda; the pip-based install in the README is.
set -euo pipefail
python -m pip install --no-deps -e .
