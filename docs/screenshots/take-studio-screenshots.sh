#!/usr/bin/env bash
# The studio itself in real terminals (issue 8): two input images and a result as thumbnails, after the
# help overlay was opened and closed (F1, Esc) and, in tmux, after a window switch (C-b c, C-b p).
# xterm (sixel) and kitty 0.41 (kitty graphics), each directly and in tmux; mlterm with a white background
# (sixel, light theme); kitty in tmux with a client that is not UTF-8 (halfblocks).
# Run from the repository root: bash docs/screenshots/take-studio-screenshots.sh
# (KITTY=... picks the kitty launcher; default ../shared/tools/kitty-trixie.)
# ONLY=studio-sweep-3x2-xterm (or studio-sweep-compare) takes just the sweep's shots.
set -euo pipefail
root=$PWD
shot=${TERM_SHOT:-$root/../shared/tools/term-shot}
kitty=${KITTY:-$root/../shared/tools/kitty-trixie}
cargo build --locked --bin kontext
bin=$root/target/debug/kontext
out=$root/docs/screenshots
work=$(mktemp -d)
mkdir -p "$work/out"
cat >"$work/config.toml" <<TOML
output_dir = "$work/out"
TOML
# The studio runs in $work (it may write there), on the built-in emulator (no key), fast.
cat >"$work/studio.sh" <<SH
#!/bin/bash
cd "$work"
unset FAL_KEY FAL_KEY_ID FAL_KEY_SECRET KONTEXT_GRAPHICS
export KONTEXT_CONFIG="$work/config.toml" KONTEXT_DATA_DIR="$work/data" KONTEXT_EMULATOR_PROFILE=fast
# A terminal that has just opened (kitty on a software-GL virtual display) can take longer than the probe's
# 300 ms to answer; started from a shell, the studio meets a terminal that is already up.
sleep 1.5
exec "$bin" "\$@"
SH
chmod +x "$work/studio.sh"
woman=$root/docs/samples/woman.png
duck=$root/docs/samples/duckling.png
# Prompt, two images (the selected one is shown), submit, wait for the result, help open and closed.
studio_keys="sleep:3.5;type:Put the duckling on the woman's t-shirt;key:Tab;type:a;type:$woman;key:Return;sleep:0.5;type:a;type:$duck;key:Return;sleep:1;key:F5;sleep:4;key:F1;sleep:1;key:Escape;sleep:1.5"
tmux_keys="$studio_keys;key:ctrl+b;type:c;sleep:1;key:ctrl+b;type:p;sleep:2"

in_tmux() { # socket, command... (TERM: this machine may have no terminfo for xterm-kitty, which tmux needs)
  local sock=$1; shift
  echo "env TERM=xterm-256color tmux -L $sock -f /dev/null new-session $*"
}

# ONLY=studio-kitty-tmux (a file name without .png) re-takes just that one.
want() { [[ -z ${ONLY:-} || $ONLY == "$1" ]]; }
want studio-xterm-sixel &&
"$shot" --size 120x40 --wait 2 --keys "$studio_keys" "$out/studio-xterm-sixel.png" -- "$work/studio.sh"
want studio-xterm-tmux-sixel &&
"$shot" --size 120x40 --wait 2 --keys "$tmux_keys" "$out/studio-xterm-tmux-sixel.png" -- \
  $(in_tmux kontext-studio-x "$work/studio.sh")
tmux -L kontext-studio-x kill-server 2>/dev/null || true
want studio-kitty &&
KITTY=$kitty "$shot" --terminal kitty --size 120x40 --wait 2 --keys "$studio_keys" "$out/studio-kitty.png" -- \
  "$work/studio.sh"
want studio-kitty-tmux &&
KITTY=$kitty "$shot" --terminal kitty --size 120x40 --wait 2 --keys "$tmux_keys" "$out/studio-kitty-tmux.png" -- \
  $(in_tmux kontext-studio-k "$work/studio.sh")
tmux -L kontext-studio-k kill-server 2>/dev/null || true
# A tmux client without a UTF-8 locale (ssh without LANG): kitty placeholders would turn into _.
want studio-kitty-tmux-no-utf8 &&
KITTY=$kitty "$shot" --terminal kitty --size 120x40 --wait 2 --keys "$studio_keys" "$out/studio-kitty-tmux-no-utf8.png" -- \
  env -u LANG -u LC_ALL -u LC_CTYPE -u LANGUAGE $(in_tmux kontext-studio-n "$work/studio.sh")
tmux -L kontext-studio-n kill-server 2>/dev/null || true
want studio-mlterm-light &&
"$shot" --terminal mlterm --size 120x40 --wait 2 --keys "$studio_keys" "$out/studio-mlterm-light.png" -- \
  "$work/studio.sh"
# A sweep from the studio (issue 10): F6, seeds 1..3 × guidance 2,5, sent; the Results grid when it has
# ended (a cell starred), then A and B marked and compared side by side. 180x50 (what fits a 1920 px display), xterm (sixel) and kitty.
sweep_keys="sleep:3.5;type:Make it night;key:Tab;type:a;type:$woman;key:Return;sleep:1;key:F6;sleep:0.5;type:1..3;key:Down;type:2,5;sleep:0.5;shot:$out/studio-sweep-dialog.png;key:Return;sleep:9;key:Tab;key:Tab;key:Tab;key:Tab;key:Down;key:Right;type:s;sleep:1"
compare_keys="$sweep_keys;type:a;key:Up;key:Left;type:b;type:c;sleep:2"
want studio-sweep-3x2-xterm &&
"$shot" --size 180x50 --wait 2 --keys "$sweep_keys" "$out/studio-sweep-3x2-xterm.png" -- "$work/studio.sh"
want studio-sweep-compare &&
KITTY=$kitty "$shot" --terminal kitty --size 180x50 --wait 2 --keys "$compare_keys" "$out/studio-sweep-compare-kitty.png" -- \
  "$work/studio.sh"
# What each run logged about its choice of graphics mode and theme.
grep -h "graphics mode chosen\|theme" "$work/data/kontext.log" 2>/dev/null | sed 's/^.*INFO //' || true
