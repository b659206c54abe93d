#!/usr/bin/env bash
# Re-take the sweep shown in README.md ("Sweeps"): a 3-seed × 2-guidance `kontext sweep` on the
# built-in emulator (no key, realistic profile: ~1 MP outputs, seconds per request), its
# transcript with the scratch folder's path removed, and the contact sheet it wrote, saved as
# docs/screenshots/sweep-grid.png. Run from the repository root:
#   bash docs/screenshots/take-sweep-grid.sh
set -euo pipefail
cargo build --bin kontext
K=$PWD/target/debug/kontext
out=$PWD/docs/screenshots
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp docs/samples/woman.png "$work/woman.png"
cd "$work"
# A fresh HOME: its own config, history and today's spend; no key, so the built-in emulator.
env -u FAL_KEY -u FAL_KEY_ID -u FAL_KEY_SECRET HOME="$work/home" XDG_CONFIG_HOME= XDG_DATA_HOME= \
  KONTEXT_EMULATOR_PROFILE=realistic \
  "$K" sweep -p "make it night" -i woman.png --seeds 1..3 --guidance 2,5 --max-usd 1 --yes \
  --out out --grid grid.png >"$work/transcript.txt" 2>&1
cp grid.png "$out/sweep-grid.png"
# The transcript as the README shows it: the scratch folder's path dropped.
sed -e "s|$work/||g" "$work/transcript.txt"
