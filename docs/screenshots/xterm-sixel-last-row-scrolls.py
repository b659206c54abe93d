import os, time
six = "\x1bPq#0;2;100;0;0#0!80~-!80~-!80~-!40~\x1b\\"   # 80x20 px = one 10x20 cell row (3 bands + partial)
out = "\x1b[?1049h\x1b[2J\x1b[1;1Htop line stays here?" + "\x1b[22;1H" + six
os.write(1, out.encode()); time.sleep(6)
