//! A Server-Sent Events parser that does linear work on any input and caps what it holds.
//!
//! eventsource-stream rescans its whole buffer for a line end on every chunk, so a stream that
//! sends bytes without a newline costs quadratic time; and it holds any line or event however
//! large. This one looks at each byte once, moves each byte at most once, and refuses a line or
//! an event over its cap (the caller then polls instead).

use std::fmt;

/// What one complete block (up to a blank line) of the stream was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SseItem {
    /// An event with `data:` lines, joined by `\n`.
    Event(String),
    /// A block of comments or fields without data (`: ping`): the server is alive.
    KeepAlive,
}

/// A cap was hit: the stream cannot be read safely any further.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SseOverflow {
    Line(usize),
    Event(usize),
}

impl fmt::Display for SseOverflow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SseOverflow::Line(cap) => write!(f, "sent a line over {} without a line end", human_bytes(*cap)),
            SseOverflow::Event(cap) => write!(f, "sent an event over {}", human_bytes(*cap)),
        }
    }
}

pub(crate) fn human_bytes(n: usize) -> String {
    const MIB: usize = 1024 * 1024;
    if n >= MIB && n.is_multiple_of(MIB) {
        format!("{} MiB", n / MIB)
    } else if n >= 1024 && n.is_multiple_of(1024) {
        format!("{} KiB", n / 1024)
    } else {
        format!("{n} bytes")
    }
}

pub(crate) struct SseParser {
    max_line: usize,
    max_event: usize,
    /// Bytes of the line not yet complete (never more than `max_line`).
    pending: Vec<u8>,
    /// `data:` of the event being built, each line followed by `\n`.
    data: Vec<u8>,
    has_data: bool,
    /// A block had lines but no data (comments, `event:`, `id:`...).
    has_other: bool,
    /// The last line ended in `\r`: a `\n` right after it belongs to the same line end.
    after_cr: bool,
    /// Bytes looked at plus bytes copied, for the linear-time tests.
    work: u64,
}

impl SseParser {
    pub(crate) fn new(max_line: usize, max_event: usize) -> SseParser {
        SseParser {
            max_line,
            max_event,
            pending: Vec::new(),
            data: Vec::new(),
            has_data: false,
            has_other: false,
            after_cr: false,
            work: 0,
        }
    }

    #[cfg(test)]
    pub(crate) fn work(&self) -> u64 {
        self.work
    }

    /// Feeds one chunk; complete blocks are appended to `out`. After an error the parser must not
    /// be fed again.
    pub(crate) fn push(&mut self, chunk: &[u8], out: &mut Vec<SseItem>) -> Result<(), SseOverflow> {
        let mut rest = chunk;
        if self.after_cr {
            self.after_cr = false;
            if let Some(tail) = rest.strip_prefix(b"\n") {
                rest = tail;
            }
        }
        while !rest.is_empty() {
            match rest.iter().position(|&b| b == b'\n' || b == b'\r') {
                None => {
                    self.work += rest.len() as u64;
                    if self.pending.len() + rest.len() > self.max_line {
                        return Err(SseOverflow::Line(self.max_line));
                    }
                    self.work += rest.len() as u64;
                    self.pending.extend_from_slice(rest);
                    return Ok(());
                }
                Some(end) => {
                    self.work += end as u64 + 1;
                    if self.pending.len() + end > self.max_line {
                        return Err(SseOverflow::Line(self.max_line));
                    }
                    let line_end = rest[end];
                    if self.pending.is_empty() {
                        self.line(&rest[..end], out)?;
                    } else {
                        self.work += end as u64;
                        let mut line = std::mem::take(&mut self.pending);
                        line.extend_from_slice(&rest[..end]);
                        self.line(&line, out)?;
                        line.clear();
                        self.pending = line;
                    }
                    rest = &rest[end + 1..];
                    if line_end == b'\r' {
                        match rest.first() {
                            Some(b'\n') => rest = &rest[1..],
                            Some(_) => {}
                            None => self.after_cr = true,
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn line(&mut self, line: &[u8], out: &mut Vec<SseItem>) -> Result<(), SseOverflow> {
        if line.is_empty() {
            if self.has_data {
                self.data.pop(); // the last data line's `\n`
                self.work += self.data.len() as u64;
                out.push(SseItem::Event(String::from_utf8_lossy(&self.data).into_owned()));
            } else if self.has_other {
                out.push(SseItem::KeepAlive);
            }
            self.data.clear();
            self.has_data = false;
            self.has_other = false;
            return Ok(());
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(0) => {
                self.has_other = true;
                return Ok(());
            }
            Some(i) => {
                let value = &line[i + 1..];
                (&line[..i], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        if field == b"data" {
            if self.data.len() + value.len() + 1 > self.max_event {
                return Err(SseOverflow::Event(self.max_event));
            }
            self.work += value.len() as u64;
            self.data.extend_from_slice(value);
            self.data.push(b'\n');
            self.has_data = true;
        } else {
            self.has_other = true;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const CAP: usize = 1024 * 1024;

    fn parse_in(chunks: &[&[u8]]) -> (Vec<SseItem>, Result<(), SseOverflow>) {
        let mut p = SseParser::new(CAP, CAP);
        let mut out = Vec::new();
        for c in chunks {
            if let Err(e) = p.push(c, &mut out) {
                return (out, Err(e));
            }
        }
        (out, Ok(()))
    }

    #[test]
    fn events_comments_and_line_ends() {
        let (items, r) = parse_in(&[b"data: {\"a\":1}\n\n: ping\n\ndata: x\r\ndata:y\r\rdata: z\n\n"]);
        r.unwrap();
        assert_eq!(
            items,
            [
                SseItem::Event("{\"a\":1}".into()),
                SseItem::KeepAlive,
                SseItem::Event("x\ny".into()),
                SseItem::Event("z".into())
            ]
        );
    }

    #[test]
    fn events_split_anywhere_parse_the_same() {
        let text: &[u8] = b"event: status\ndata: one\r\n\r\n: ping\n\ndata: two\ndata: three\r\r";
        let (whole, _) = parse_in(&[text]);
        for cut in 0..text.len() {
            let (a, b) = text.split_at(cut);
            assert_eq!(parse_in(&[a, b]).0, whole, "cut at {cut}");
        }
        let bytes: Vec<&[u8]> = text.chunks(1).collect();
        assert_eq!(parse_in(&bytes).0, whole);
    }

    #[test]
    fn caps_are_enforced() {
        let mut p = SseParser::new(16, 32);
        let mut out = Vec::new();
        assert_eq!(p.push(&[b'x'; 17], &mut out), Err(SseOverflow::Line(16)));
        let mut p = SseParser::new(16, 32);
        let r = (0..10).try_for_each(|_| p.push(b"data: 0123456\n", &mut out));
        assert_eq!(r, Err(SseOverflow::Event(32)));
        assert!(out.is_empty());
    }

    /// Work for `size` bytes without a newline, fed in chunks of 1 KiB.
    fn work_without_newline(size: usize) -> u64 {
        let mut p = SseParser::new(usize::MAX, usize::MAX);
        let chunk = vec![b'x'; 1024];
        let mut out = Vec::new();
        for _ in 0..size / 1024 {
            p.push(&chunk, &mut out).unwrap();
        }
        p.work()
    }

    #[test]
    fn no_newline_costs_linear_work() {
        let one = work_without_newline(1024 * 1024);
        let four = work_without_newline(4 * 1024 * 1024);
        assert!(one <= 2 * 1024 * 1024, "{one}");
        assert!(four <= 4 * one + 4096, "4 MiB took {four}, 1 MiB took {one}");
        // The production cap stops such a stream at 1 MiB.
        let mut p = SseParser::new(CAP, CAP);
        let mut out = Vec::new();
        let chunk = vec![b'x'; 64 * 1024];
        let fed = (0..64).take_while(|_| p.push(&chunk, &mut out).is_ok()).count();
        assert_eq!(fed, 16);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_and_stay_linear(
            bytes in proptest::collection::vec(any::<u8>(), 0..4096),
            cut in 1usize..64,
        ) {
            let mut p = SseParser::new(256, 512);
            let mut out = Vec::new();
            for chunk in bytes.chunks(cut) {
                if p.push(chunk, &mut out).is_err() {
                    break;
                }
            }
            prop_assert!(p.work() <= 4 * bytes.len() as u64 + 16, "work {} for {} bytes", p.work(), bytes.len());
            for item in &out {
                if let SseItem::Event(data) = item {
                    prop_assert!(data.len() <= 512 * 3, "event of {} bytes", data.len());
                }
            }
        }

        #[test]
        fn events_survive_any_chunking(
            datas in proptest::collection::vec("[^\r\n]{0,40}", 1..8),
            cuts in proptest::collection::vec(1usize..16, 1..8),
        ) {
            let text: String = datas.iter().map(|d| format!("data: {d}\n\n")).collect();
            let mut p = SseParser::new(CAP, CAP);
            let mut out = Vec::new();
            let mut rest = text.as_bytes();
            let mut i = 0;
            while !rest.is_empty() {
                let n = cuts[i % cuts.len()].min(rest.len());
                p.push(&rest[..n], &mut out).unwrap();
                rest = &rest[n..];
                i += 1;
            }
            let expected: Vec<SseItem> = datas.iter().map(|d| SseItem::Event(d.clone())).collect();
            prop_assert_eq!(out, expected);
        }
    }
}
