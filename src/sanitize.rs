//! Text from a server (logs, errors, prompts echoed back) must not drive the user's terminal: strip
//! escape sequences and other control characters before it is printed or drawn.
//!
//! Sequences are removed whole by `vte`'s state machine (the parser alacritty uses), not byte by
//! byte: an OSC 52 clipboard write or a CSI 2J leaves nothing behind, not even its `]52;c;…`
//! payload. Unterminated strings swallow the rest of the text, as a terminal would. The work is
//! linear in the input: vte looks at each byte once.

/// Removes ANSI/VT escape sequences whole (CSI, OSC, DCS, SOS, PM, APC — 7-bit `ESC x` and 8-bit
/// C1 forms alike), C0/C1 control characters, and the invisible characters that reorder or hide
/// text (bidi overrides, isolates and marks, zero-width space, BOM). Newlines and tabs are kept;
/// U+2028/U+2029 become newlines.
pub fn strip_controls(text: &str) -> String {
    strip_counting(text).0
}

/// [`strip_controls`] and the number of steps it took (bytes fed to vte plus its callbacks), so a
/// test can check that the work grows linearly without timing anything.
fn strip_counting(text: &str) -> (String, usize) {
    let mut keep = Keep { out: String::with_capacity(text.len()), steps: 0 };
    let mut parser = vte::Parser::new();
    let mut buf = [0u8; 4];
    for c in text.chars() {
        let bytes: &[u8] = match c {
            // A C1 control (U+0080–U+009F, e.g. U+009B CSI or U+009D OSC) is its 7-bit form
            // `ESC (c - 0x40)`; vte only treats raw bytes that way, and text arrives decoded.
            '\u{80}'..='\u{9f}' => {
                buf[0] = 0x1b;
                buf[1] = c as u8 - 0x40;
                &buf[..2]
            }
            _ => c.encode_utf8(&mut buf).as_bytes(),
        };
        keep.steps += bytes.len();
        parser.advance(&mut keep, bytes);
    }
    (keep.out, keep.steps)
}

/// Like [`strip_controls`] but also folds newlines and tabs into spaces: for one-line displays.
pub fn one_line(text: &str) -> String {
    strip_controls(text).replace(['\n', '\t'], " ")
}

/// Serialised JSON made safe to print: serde escapes C0 controls (ESC becomes `\u001b`) but
/// writes DEL, C1 controls (U+009B is CSI to some terminals), bidi and invisible characters raw.
/// They are written as `\uXXXX` too, so the data stays exact and the terminal sees none of them.
/// Outside strings serialised JSON holds only ASCII punctuation, so escaping anywhere is safe.
pub fn terminal_safe_json(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if matches!(c, '\u{7f}'..='\u{9f}' | '\u{2028}' | '\u{2029}') || is_invisible_format(c) {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// Characters with no glyph that change how the text around them is shown: bidi embeddings,
/// overrides, isolates and marks (the "Trojan Source" set), zero-width space, word joiner and
/// invisible operators, BOM, deprecated format controls, interlinear annotations. Zero-width
/// (non-)joiners stay: emoji sequences and Persian or Indic words need them, and they reorder nothing.
fn is_invisible_format(c: char) -> bool {
    matches!(c,
        '\u{061c}' | '\u{200b}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}'
        | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206f}' | '\u{feff}' | '\u{fff9}'..='\u{fffb}')
}

/// vte's callbacks: printable characters and the two kept controls are written out; every
/// dispatched sequence (CSI, OSC, DCS, ESC) falls to the trait's empty defaults and is dropped.
struct Keep {
    out: String,
    steps: usize,
}

impl vte::Perform for Keep {
    fn print(&mut self, c: char) {
        self.steps += 1;
        match c {
            '\u{2028}' | '\u{2029}' => self.out.push('\n'),
            c if c.is_control() || is_invisible_format(c) => {}
            c => self.out.push(c),
        }
    }

    fn execute(&mut self, byte: u8) {
        self.steps += 1;
        if byte == b'\n' || byte == b'\t' {
            self.out.push(byte as char);
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

    #[test]
    fn strips_whole_sequences_even_after_a_doubled_escape() {
        // The hand-written stripper took `ESC ESC` as one sequence and printed the OSC's payload.
        let evil = "log \u{1b}\u{1b}]52;c;ZXZpbA==\u{07}\u{1b}[2Jend";
        assert_eq!(strip_controls(evil), "log end");
        assert_eq!(strip_controls("a\u{1b}(\u{1b}]52;c;ZXZpbA==\u{07}b"), "ab", "ESC ( then OSC");
    }

    #[test]
    fn strips_sos_pm_apc_and_c1_strings_whole() {
        assert_eq!(strip_controls("a\u{1b}Xsos text\u{1b}\\b"), "ab", "SOS");
        assert_eq!(strip_controls("a\u{1b}^pm text\u{1b}\\b"), "ab", "PM");
        assert_eq!(strip_controls("a\u{1b}_Gf=100;AAAA\u{1b}\\b"), "ab", "APC (kitty graphics)");
        assert_eq!(strip_controls("a\u{9d}52;c;ZXZpbA==\u{9c}b"), "ab", "C1 OSC … C1 ST");
        assert_eq!(strip_controls("a\u{90}q#0~\u{9c}b"), "ab", "C1 DCS");
        assert_eq!(strip_controls("a\u{98}x\u{9c}b\u{9e}y\u{9c}c\u{9f}z\u{9c}d"), "abcd", "C1 SOS, PM, APC");
    }

    #[test]
    fn an_unterminated_string_swallows_the_rest() {
        assert_eq!(strip_controls("a\u{1b}]52;c;ZXZpbA==[2J and more"), "a");
        assert_eq!(strip_controls("a\u{1b}Pq#0;2;0"), "a");
        assert_eq!(strip_controls("a\u{1b}["), "a");
    }

    #[test]
    fn strips_bidi_controls_and_invisible_characters() {
        // "Trojan Source": an override makes `admin` read as `nimda`.
        assert_eq!(strip_controls("x\u{202e}nimda\u{202c}y"), "xnimday");
        assert_eq!(strip_controls("\u{2066}a\u{2067}b\u{2068}c\u{2069}\u{200e}\u{200f}\u{061c}"), "abc");
        assert_eq!(strip_controls("\u{feff}zero\u{200b}width\u{2060}"), "zerowidth");
        assert_eq!(strip_controls("keep 👩\u{200d}💻 and \u{200c}"), "keep 👩\u{200d}💻 and \u{200c}", "joiners stay");
        assert_eq!(one_line("a\u{2028}b\u{2029}c\u{7f}"), "a b c");
    }

    #[test]
    fn json_keeps_the_data_and_shows_no_control() {
        let value = serde_json::json!({"error": "a\u{1b}]52;c;ZXZpbA==\u{7}\u{9b}2J\u{202e}x\u{7f}\u{2028}é"});
        let json = terminal_safe_json(&serde_json::to_string(&value).unwrap());
        assert_eq!(json, r#"{"error":"a\u001b]52;c;ZXZpbA==\u0007\u009b2J\u202ex\u007f\u2028é"}"#);
        assert_eq!(serde_json::from_str::<serde_json::Value>(&json).unwrap(), value, "the same data");
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        /// Text as a hostile server would write it: escape introducers, terminators, parameters,
        /// C0/C1 controls, bidi and zero-width characters, and ordinary letters, in any order.
        fn hostile_text() -> impl Strategy<Value = String> {
            let hostile = prop::sample::select(vec![
                '\u{1b}', '[', ']', 'P', 'X', '^', '_', '\\', ';', '2', 'J', '\u{07}', '\u{9b}', '\u{9c}', '\u{9d}',
                '\u{90}', '\u{98}', '\u{9e}', '\u{9f}', '\u{85}', '\u{18}', '\u{1a}', '\r', '\n', '\t', '\u{7f}',
                '\u{202e}', '\u{2066}', '\u{200f}', '\u{feff}', '\u{2028}', 'a', 'é', '✓', '👩',
            ]);
            prop::collection::vec(prop_oneof![3 => hostile, 1 => any::<char>()], 0..200)
                .prop_map(|chars| chars.into_iter().collect())
        }

        /// What must never reach a terminal (newlines and tabs are kept by design).
        fn terminal_unsafe(c: char) -> bool {
            (c.is_control() && c != '\n' && c != '\t') || is_invisible_format(c) || c == '\u{2028}'
        }

        fn assert_clean(out: &str) -> Result<(), TestCaseError> {
            for c in out.chars() {
                prop_assert!(!terminal_unsafe(c), "{c:?} got through in {out:?}");
            }
            Ok(())
        }

        proptest! {
            #[test]
            fn hostile_text_never_lets_a_control_through(text in hostile_text()) {
                let out = strip_controls(&text);
                assert_clean(&out)?;
                prop_assert_eq!(strip_controls(&out), out.clone(), "stripping twice changes nothing: no sequence is left to reassemble");
                let line = one_line(&text);
                assert_clean(&line)?;
                prop_assert!(!line.contains(['\n', '\t']));
            }

            #[test]
            fn arbitrary_bytes_never_panic_or_leak(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
                assert_clean(&strip_controls(&String::from_utf8_lossy(&bytes)))?;
            }

            #[test]
            fn plain_text_is_kept_as_it_is(text in "[a-zA-Z0-9 .,:;!?'()éüß✓日本語\n\t-]{0,100}") {
                prop_assert_eq!(strip_controls(&text), text);
            }

            #[test]
            fn work_grows_linearly(text in hostile_text()) {
                // Four copies cost at most four times one copy (plus a few steps for a sequence
                // that spans the joins): a rescan per character would be quadratic.
                let (_, once) = strip_counting(&text);
                let (_, four) = strip_counting(&text.repeat(4));
                prop_assert!(four <= 4 * once + 16, "{four} steps for 4x, {once} for 1x");
                prop_assert!(once <= 4 * text.len() + 4, "{once} steps for {} bytes", text.len());
            }
        }
    }
}
