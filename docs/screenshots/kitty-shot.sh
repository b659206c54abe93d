#!/bin/bash
# kitty-shot.sh OUT.png -- CMD...: run CMD in kitty (apt-get install kitty xvfb imagemagick) on Xvfb, screenshot it
out=$1; shift; shift
disp=:$((100 + RANDOM % 800))
Xvfb $disp -screen 0 1280x800x24 >/dev/null 2>&1 & xv=$!
sleep 0.7
DISPLAY=$disp LIBGL_ALWAYS_SOFTWARE=1 kitty --config NONE -o font_size=10 -o initial_window_width=80c -o initial_window_height=24c "$@" >/dev/null 2>&1 & kt=$!
sleep ${WAIT:-5}
DISPLAY=$disp import -window root -crop 820x520+0+0 "$out"
kill $kt $xv 2>/dev/null
