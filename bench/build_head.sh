#!/bin/sh
# Build a clean copy of a commit (default HEAD) outside the shared work tree,
# so a benchmark measures committed code, not files mid-edit:
#   bench/build_head.sh [commit] [dir]  ->  then PYTHONPATH=<dir>/python python bench/...
set -eu
commit=${1:-HEAD}
dir=${2:-/tmp/tufc-bench-head}
repo=$(cd "$(dirname "$0")/.." && pwd)
rm -rf "$dir"
mkdir -p "$dir"
git -C "$repo" archive "$commit" | tar -x -C "$dir"
if ! (cd "$dir" && nice -n 10 python setup.py -q build_ext --inplace >"$dir/build.log" 2>&1); then
    cat "$dir/build.log" >&2
    exit 1
fi
echo "built $(git -C "$repo" rev-parse --short "$commit") in $dir; use: PYTHONPATH=$dir/python"
