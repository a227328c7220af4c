#!/usr/bin/env bash
# Regenerate the Python modules of matching/wire/ridesim_matching.proto with grpcio-tools.
#
#   bash matching/wire/generate.sh            # uses .venv/bin/python, else python3
#   PYTHON=/path/to/python bash matching/wire/generate.sh
#
# Run from anywhere; the modules are written next to the .proto and committed.
# tests/matching/test_wire.py fails when they are stale.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
# The proto is compiled by its path from the repository root, so the generated gRPC module
# imports its messages as `matching.wire.ridesim_matching_pb2`.
"$PYTHON" -m grpc_tools.protoc -I. \
  --python_out=. --pyi_out=. --grpc_python_out=. \
  matching/wire/ridesim_matching.proto
# Generated code is not linted.
for f in matching/wire/ridesim_matching_pb2.py matching/wire/ridesim_matching_pb2.pyi \
         matching/wire/ridesim_matching_pb2_grpc.py; do
  { echo "# ruff: noqa"; cat "$f"; } > "$f.tmp" && mv "$f.tmp" "$f"
done
