import os, sys, time
six = "\x1bPq#0;2;100;0;0#0!80~-!80~-!80~\x1b\\"
def wrap(s): return "\x1bPtmux;" + s.replace("\x1b", "\x1b\x1b") + "\x1b\\"
out = "\x1b[2J\x1b[1;1Hlabel A: no CUP inside passthrough (at tmux cursor 5;5)   label B: CUP 5;45 inside"
out += "\x1b[5;5H" + wrap(six)           # like ratatui-image 11.1: relies on the outer cursor
out += "\x1b[5;45H" + wrap("\x1b7\x1b[5;45H" + six + "\x1b8")   # kontext: absolute position inside
out += "\x1b[20;1Hdone"
os.write(1, out.encode()); time.sleep(6)
