#!/bin/bash
# `make demo`: trace the bundled example and show what iotrace saw.
set -euo pipefail
# the iotrace that `make` installed, whether or not its bin directory is on PATH
iotrace() { "${PYTHON:-python3}" -m iotrace "$@"; }
here="$(cd "$(dirname "$0")" && pwd)"
out="${DEMO_DIR:-$here/../build/demo}"
rm -rf "$out" && mkdir -p "$out"
cc -O1 -g -o "$out/checkpoint" "$here/checkpoint.c"
cd "$out"
echo "\$ iotrace run -o trace -- ./checkpoint"
iotrace run -o trace -- ./checkpoint
echo
echo "\$ iotrace show trace   (first 25 events)"
iotrace show trace | head -25
if iotrace report --help >/dev/null 2>&1; then
  echo
  echo "\$ iotrace report trace"
  iotrace report trace
fi
