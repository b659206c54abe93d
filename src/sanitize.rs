//! Text from a server (logs, errors, prompts echoed back) must not drive the user's terminal: strip
//! escape sequences and other control characters before it is printed or drawn.

/// Removes ANSI/VT escape sequences (CSI, OSC, DCS, …) and C0/C1 control characters, keeping
/// newlines and tabs.
pub fn strip_controls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => skip_escape(&mut chars),
            // C1 CSI/OSC/DCS/APC/PM/SOS introducers behave like ESC [ / ESC ] / …
            '\u{9b}' => skip_until_final(&mut chars),
            '\u{90}' | '\u{9d}' | '\u{9e}' | '\u{9f}' | '\u{98}' => skip_string(&mut chars),
            '\n' | '\t' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Like [`strip_controls`] but also folds newlines and tabs into spaces: for one-line displays.
pub fn one_line(text: &str) -> String {
    strip_controls(text).replace(['\n', '\t', '\r'], " ")
}

type Chars<'a> = std::iter::Peekable<std::str::Chars<'a>>;

fn skip_escape(chars: &mut Chars) {
    match chars.next() {
        Some('[') => skip_until_final(chars),
        Some(']' | 'P' | 'X' | '^' | '_') => skip_string(chars),
        // Two-character sequences with intermediates, e.g. ESC ( B.
        Some(c) if ('\u{20}'..='\u{2f}').contains(&c) => {
            chars.next();
        }
        _ => {}
    }
}

/// CSI: parameters and intermediates, then one final byte in @..~.
fn skip_until_final(chars: &mut Chars) {
    for c in chars.by_ref() {
        if ('\u{40}'..='\u{7e}').contains(&c) {
            break;
        }
    }
}

/// OSC/DCS/…: until BEL or ST (ESC \ or U+009C).
fn skip_string(chars: &mut Chars) {
    while let Some(c) = chars.next() {
        match c {
            '\u{07}' | '\u{9c}' => break,
            '\u{1b}' => {
                if chars.peek() == Some(&'\\') {
                    chars.next();
                }
                break;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_sequences_and_controls() {
        assert_eq!(strip_controls("\u{1b}[31mred\u{1b}[0m"), "red");
        assert_eq!(strip_controls("a\u{1b}]52;c;ZXZpbA==\u{07}b"), "ab", "OSC 52 clipboard write");
        assert_eq!(strip_controls("a\u{1b}]0;title\u{1b}\\b"), "ab");
        assert_eq!(strip_controls("x\u{1b}Pq#0;2;0;0;0~-\u{1b}\\y"), "xy", "sixel DCS");
        assert_eq!(strip_controls("bell\u{07}\rback\u{8}"), "bellback");
        assert_eq!(strip_controls("\u{9b}2Jz"), "z");
        assert_eq!(strip_controls("line1\nline2\ttab é ✓"), "line1\nline2\ttab é ✓");
        assert_eq!(one_line("a\nb\tc"), "a b c");
    }
}
