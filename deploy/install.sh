#!/bin/sh
# Install videoqueue from the source tree in $1 (default: the current folder) for an API node
# or a CPU worker: the PostgreSQL and S3 drivers, no torch. The Dockerfile runs this; on a GPU
# machine install "$1[postgres,s3,gpu]" instead, with the CUDA build of torch.
set -eu
pip install --no-cache-dir "${1:-.}[postgres,s3]"
