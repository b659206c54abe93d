//! What the output files are called. Never a name the server chose: only the request id (made
//! safe), the prompt the user typed and today's date go into it.

/// `kontext run` names files after the request (`<request id>-<n>.jpg`), as `curl -O` names them
/// after the URL: scripts can find them. The studio writes into a pictures folder that people
/// browse, so there a name says when and what: `2026-12-02_3f2a9c1b_duckling-on-the-t-shirt-1.jpg`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputNaming {
    #[default]
    RequestId,
    Readable,
}

/// At most this many characters of the prompt go into a readable name (whole words).
const PROMPT_CHARS: usize = 40;

impl OutputNaming {
    /// The file name of output `index` (0-based) of a request. `day` is `YYYY-MM-DD`.
    pub fn file_name(self, request_id: &str, prompt: &str, day: &str, index: usize, extension: &str) -> String {
        match self {
            OutputNaming::RequestId => format!("{}-{index}.{extension}", safe_stem(request_id)),
            OutputNaming::Readable => {
                let short: String = safe_stem(request_id).chars().filter(char::is_ascii_alphanumeric).take(8).collect();
                let words = prompt_words(prompt);
                let day: String = day.chars().filter(|c| c.is_ascii_digit() || *c == '-').take(10).collect();
                let mut name = format!("{day}_{short}");
                if !words.is_empty() {
                    name.push('_');
                    name.push_str(&words);
                }
                // People count images from 1, as the studio shows them.
                format!("{name}-{}.{extension}", index + 1)
            }
        }
    }
}

/// The request id with anything but `[A-Za-z0-9_-]` removed (ids come from the server).
pub(super) fn safe_stem(request_id: &str) -> String {
    let s: String =
        request_id.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').take(64).collect();
    if s.is_empty() { "request".into() } else { s }
}

/// The first words of the prompt as lowercase ASCII joined by `-` (transliterated by `slug`, so
/// "Café über" becomes "cafe-uber"): safe on every filesystem, cut at a word boundary.
fn prompt_words(prompt: &str) -> String {
    let slug = slug::slugify(prompt);
    let mut out = String::new();
    for word in slug.split('-').filter(|w| !w.is_empty()) {
        let extra = if out.is_empty() { word.len() } else { word.len() + 1 };
        if out.len() + extra > PROMPT_CHARS {
            if out.is_empty() {
                out.push_str(&word[..PROMPT_CHARS]);
            }
            break;
        }
        if !out.is_empty() {
            out.push('-');
        }
        out.push_str(word);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_ids_cannot_escape_the_folder() {
        assert_eq!(safe_stem("../../etc/passwd"), "etcpasswd");
        assert_eq!(safe_stem("a1b2-c3"), "a1b2-c3");
        assert_eq!(safe_stem("/.."), "request");
    }

    #[test]
    fn request_id_names_stay_as_kontext_run_documents_them() {
        let n = OutputNaming::RequestId.file_name("764cabcf-b745-4b3e", "anything", "2026-12-02", 0, "jpg");
        assert_eq!(n, "764cabcf-b745-4b3e-0.jpg");
        assert_eq!(OutputNaming::RequestId.file_name("../../etc/x", "", "", 2, "png"), "etcx-2.png");
    }

    #[test]
    fn readable_names_say_when_and_what() {
        let n = OutputNaming::Readable.file_name(
            "3f2a9c1b-5d6e-4f70-8a9b",
            "Put the little duckling on top of the woman's t-shirt.",
            "2026-12-02",
            0,
            "jpg",
        );
        assert_eq!(n, "2026-12-02_3f2a9c1b_put-the-little-duckling-on-top-of-the-1.jpg");
    }

    #[test]
    fn readable_names_are_safe_whatever_the_prompt_or_id() {
        for (id, prompt) in [
            ("../..//\u{1b}]52;c;", "/etc/passwd \\ C:\\CON: <>|?*\"\u{0}"),
            ("", ""),
            ("abc", "日本語のプロンプト"),
            ("abc", "Café über straße"),
            ("abc", &"x".repeat(500)),
        ] {
            let n = OutputNaming::Readable.file_name(id, prompt, "2026-12-02", 3, "png");
            let stem = n.strip_suffix("-4.png").expect(&n);
            assert!(stem.len() <= 10 + 1 + 8 + 1 + PROMPT_CHARS, "{n}");
            assert!(stem.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'), "{n}");
            assert!(n.starts_with("2026-12-02_"), "{n}");
        }
        let n = OutputNaming::Readable.file_name("abc", "Café über straße", "2026-12-02", 0, "jpg");
        assert_eq!(n, "2026-12-02_abc_cafe-uber-strasse-1.jpg");
    }
}
