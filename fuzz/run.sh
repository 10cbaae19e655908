#!/usr/bin/env bash
# Fuzzes the ELF parser for a bounded time (default 600 s), seeded with the objects of
# bpf-progs/ in both byte orders. Needs `cargo install cargo-fuzz` and `cargo xtask build-bpf`.
# cargo-fuzz needs nightly flags (-Zsanitizer); RUSTC_BOOTSTRAP=1 lets the stable toolchain
# accept them.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
seconds="${1:-600}"
corpus=corpus/parse
mkdir -p "$corpus"
for o in ../target/bpf/*.o; do cp "$o" "$corpus/el_$(basename "$o")"; done
for o in ../target/bpf/bpfeb/*.o; do cp "$o" "$corpus/eb_$(basename "$o")"; done
RUSTC_BOOTSTRAP=1 cargo fuzz run parse "$corpus" -- -max_total_time="$seconds" -rss_limit_mb=4096
