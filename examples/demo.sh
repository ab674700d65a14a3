#!/bin/bash
# `make demo`: trace the bundled example and show what iotrace saw.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
top="$(cd "$here/.." && pwd)"
# the iotrace that `make` installed into the checkout's virtual environment
py="${PYTHON:-$top/.venv/bin/python}"
case "$py" in /*) ;; *) py="$top/$py" ;; esac
iotrace() { "$py" -m iotrace "$@"; }
out="${DEMO_DIR:-$top/build/demo}"
rm -rf "$out" && mkdir -p "$out"
cc -O1 -g -o "$out/checkpoint" "$here/checkpoint.c"
cd "$out"
echo "\$ iotrace run -o trace -- ./checkpoint"
iotrace run -o trace -- ./checkpoint
echo
echo "\$ iotrace show trace   (first 25 events)"
iotrace show trace | head -25
echo
echo "\$ iotrace report trace"
iotrace report trace
iotrace report trace --html report.html >/dev/null 2>&1
bin="$(dirname "$py")"
cat <<TXT

The trace is in $out/trace
The HTML report (iotrace report $out/trace --html $out/report.html) is $out/report.html
Run iotrace yourself with $bin/iotrace, or put it on PATH: source $bin/activate
(or, for your user, outside this checkout: pipx install $top)
TXT
