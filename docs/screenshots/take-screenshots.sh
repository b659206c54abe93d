#!/usr/bin/env bash
# Re-take the screenshots in docs/GRAPHICS.md: xterm (VT340, sixel) on a virtual display via term-shot,
# directly and inside tmux. Run from the repository root: bash docs/screenshots/take-screenshots.sh
set -euo pipefail
shot=${TERM_SHOT:-../shared/tools/term-shot}
cargo build --example thumb
T=$PWD/target/debug/examples/thumb
out=docs/screenshots
tmp=$(mktemp -d)
"$shot" --size 80x24 --wait 4 "$out/xterm-sixel.png" -- "$T" --seconds 8 --report "$tmp/xterm.txt"
"$shot" --size 80x24 --wait 4 "$out/xterm-none.png" -- "$T" --graphics none --seconds 8
"$shot" --size 80x24 --wait 4 "$out/tmux-sixel.png" -- \
  tmux -L kontext-shot -f /dev/null new-session "$T --seconds 8 --report $tmp/tmux.txt"
tmux -L kontext-shot kill-server 2>/dev/null || true
cat >"$tmp/split.sh" <<SH
#!/bin/bash
tmux -L kontext-split -f /dev/null new-session -d -x 100 -y 30 bash \; \
  split-window -h -l 72 "$T $PWD/docs/samples/duckling.png --seconds 9 --report $tmp/split.txt"
exec tmux -L kontext-split attach
SH
cat >"$tmp/detached.sh" <<SH
#!/bin/bash
tmux -L kontext-detached -f /dev/null new-session -d -x 80 -y 24 "$T --seconds 10 --report $tmp/detached.txt"
sleep 1.5
exec tmux -L kontext-detached attach
SH
chmod +x "$tmp"/*.sh
"$shot" --size 100x30 --wait 4 "$out/tmux-split-sixel.png" -- "$tmp/split.sh"
tmux -L kontext-split kill-server 2>/dev/null || true
"$shot" --size 80x24 --wait 4 "$out/tmux-detached-halfblocks.png" -- "$tmp/detached.sh"
tmux -L kontext-detached kill-server 2>/dev/null || true
"$shot" --size 90x22 --wait 3 "$out/tmux-passthrough-needs-cup.png" -- \
  tmux -L kontext-cup -f /dev/null new-session "tmux -L kontext-cup set -p allow-passthrough on; python3 $out/tmux-passthrough-needs-cup.py"
tmux -L kontext-cup kill-server 2>/dev/null || true
"$shot" --size 90x22 --wait 3 "$out/xterm-sixel-last-row-scrolls.png" -- python3 "$out/xterm-sixel-last-row-scrolls.py"
for f in "$tmp"/*.txt; do echo "== $(basename "$f")"; cat "$f"; done
