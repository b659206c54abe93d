//! Keys typed while the probe waited for the terminal's answers. They were read from the tty together with the
//! answers; instead of pushing them back into the tty (`TIOCSTI`, which kernels since 6.2 may forbid), they are
//! turned into crossterm events here and fed to the app before the tty's own input.

use crossterm::event::{Event, KeyCode, KeyEvent, KeyEventKind, KeyEventState, KeyModifiers};
use termina::event::{KeyCode as TKey, KeyEventKind as TKind, Modifiers};

/// The events in `bytes` (terminal input as the tty delivered it), in order. Anything that is not a key, a
/// paste or a focus change is dropped.
pub fn typed_events(bytes: &[u8]) -> Vec<Event> {
    let mut parser = termina::Parser::default();
    // The probe has finished reading: an incomplete sequence at the end will not be completed.
    parser.parse(bytes, false);
    std::iter::from_fn(|| parser.pop()).filter_map(convert).collect()
}

fn convert(event: termina::Event) -> Option<Event> {
    match event {
        termina::Event::Key(k) => {
            let code = key_code(k.code)?;
            let kind = match k.kind {
                TKind::Press => KeyEventKind::Press,
                TKind::Repeat => KeyEventKind::Repeat,
                TKind::Release => KeyEventKind::Release,
            };
            Some(Event::Key(KeyEvent { code, modifiers: modifiers(k.modifiers), kind, state: KeyEventState::NONE }))
        }
        termina::Event::Paste(text) => Some(Event::Paste(text)),
        termina::Event::FocusIn => Some(Event::FocusGained),
        termina::Event::FocusOut => Some(Event::FocusLost),
        _ => None,
    }
}

fn key_code(code: TKey) -> Option<KeyCode> {
    Some(match code {
        TKey::Char(c) => KeyCode::Char(c),
        TKey::Enter => KeyCode::Enter,
        TKey::Backspace => KeyCode::Backspace,
        TKey::Tab => KeyCode::Tab,
        TKey::BackTab => KeyCode::BackTab,
        TKey::Escape => KeyCode::Esc,
        TKey::Left => KeyCode::Left,
        TKey::Right => KeyCode::Right,
        TKey::Up => KeyCode::Up,
        TKey::Down => KeyCode::Down,
        TKey::Home => KeyCode::Home,
        TKey::End => KeyCode::End,
        TKey::PageUp => KeyCode::PageUp,
        TKey::PageDown => KeyCode::PageDown,
        TKey::Insert => KeyCode::Insert,
        TKey::Delete => KeyCode::Delete,
        TKey::Function(n) => KeyCode::F(n),
        TKey::Null => KeyCode::Null,
        _ => return None,
    })
}

fn modifiers(m: Modifiers) -> KeyModifiers {
    let mut out = KeyModifiers::NONE;
    for (from, to) in [
        (Modifiers::SHIFT, KeyModifiers::SHIFT),
        (Modifiers::CONTROL, KeyModifiers::CONTROL),
        (Modifiers::ALT, KeyModifiers::ALT),
        (Modifiers::SUPER, KeyModifiers::SUPER),
        (Modifiers::HYPER, KeyModifiers::HYPER),
        (Modifiers::META, KeyModifiers::META),
    ] {
        if m.contains(from) {
            out |= to;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode, modifiers: KeyModifiers) -> Event {
        Event::Key(KeyEvent::new(code, modifiers))
    }

    #[test]
    fn typed_text_keys_and_escapes_become_crossterm_events_in_order() {
        let events = typed_events(b"hi\r\x1b[A\x11\x1bOP\x1b[I\x1b[15~");
        assert_eq!(
            events,
            vec![
                key(KeyCode::Char('h'), KeyModifiers::NONE),
                key(KeyCode::Char('i'), KeyModifiers::NONE),
                key(KeyCode::Enter, KeyModifiers::NONE),
                key(KeyCode::Up, KeyModifiers::NONE),
                key(KeyCode::Char('q'), KeyModifiers::CONTROL),
                key(KeyCode::F(1), KeyModifiers::NONE),
                Event::FocusGained,
                key(KeyCode::F(5), KeyModifiers::NONE),
            ]
        );
    }

    #[test]
    fn nothing_typed_gives_nothing() {
        assert!(typed_events(b"").is_empty());
    }
}
