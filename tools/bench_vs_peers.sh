#!/usr/bin/env bash
# optic against a peer impl, interleaved in one run: tools/bench_vs_peers.py does the work
# (see its docstring); this wrapper builds optic in release (unless OPTIC_BIN names a binary)
# and runs the driver with the peers' venv, made by shared/peers/setup.sh if it is missing.
#   tools/bench_vs_peers.sh W1 torch_fused --size 1048576 --layout flat
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
peers="${PEERS_DIR:-$root/../shared/peers}"
py="${PEERS_PYTHON:-$HOME/.venv-peers/bin/python}"
if [ ! -x "$py" ]; then
    bash "$peers/setup.sh"
fi
if [ -z "${OPTIC_BIN:-}" ]; then
    (cd "$root" && cargo build --release --quiet)
    OPTIC_BIN="${CARGO_TARGET_DIR:-$root/target}/release/optic"
fi
PEERS_DIR="$peers" exec "$py" "$root/tools/bench_vs_peers.py" "$@" --optic "$OPTIC_BIN"
