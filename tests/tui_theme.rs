//! The dark and the light theme, whole screens (issue 8, part 2, item 5): every piece of text is
//! readable on its background (contrast at least 3:1 with xterm's palette, DIM counted as half
//! way to the background), and insta snapshots record the colours of each screen.

use crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
use kontext::tui::app::App;
use kontext::tui::message::Message;
use kontext::tui::view::{self, NoImages, theme::Theme};

mod support;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::{Color, Modifier};

fn send(app: &mut App, code: KeyCode, modifiers: KeyModifiers) {
    app.update(Message::Input(Event::Key(KeyEvent::new(code, modifiers))));
}

/// A prompt, two images (the second selected, in the focused Images pane), a changed parameter.
fn filled() -> App {
    let mut app = support::studio::app();
    for c in "Put the little duckling on top of the woman's t-shirt.".chars() {
        send(&mut app, KeyCode::Char(c), KeyModifiers::NONE);
    }
    send(&mut app, KeyCode::Char('3'), KeyModifiers::ALT);
    // The first row is the endpoint (a letter there opens its list): the seed is the next one.
    send(&mut app, KeyCode::Down, KeyModifiers::NONE);
    send(&mut app, KeyCode::Char('4'), KeyModifiers::NONE);
    send(&mut app, KeyCode::Char('2'), KeyModifiers::ALT);
    app.update(Message::Input(Event::Paste(
        "https://v3.fal.media/files/penguin/a.webp\nhttps://v3.fal.media/files/tiger/b.webp\n".into(),
    )));
    send(&mut app, KeyCode::Down, KeyModifiers::NONE);
    app
}

fn draw(app: &mut App, theme: Theme) -> Buffer {
    let mut t = Terminal::new(TestBackend::new(120, 40)).unwrap();
    t.draw(|f| view::draw(f, app, &mut NoImages, &theme)).unwrap();
    t.backend().buffer().clone()
}

/// xterm's default 16 colours and its 256-colour cube and grey ramp.
fn rgb(c: Color, default: (u8, u8, u8)) -> (u8, u8, u8) {
    const BASE: [(u8, u8, u8); 16] = [
        (0, 0, 0),
        (205, 0, 0),
        (0, 205, 0),
        (205, 205, 0),
        (0, 0, 238),
        (205, 0, 205),
        (0, 205, 205),
        (229, 229, 229),
        (127, 127, 127),
        (255, 0, 0),
        (0, 255, 0),
        (255, 255, 0),
        (92, 92, 255),
        (255, 0, 255),
        (0, 255, 255),
        (255, 255, 255),
    ];
    let indexed = |i: u8| match i {
        0..=15 => BASE[usize::from(i)],
        16..=231 => {
            let i = i - 16;
            let level = |v: u8| if v == 0 { 0 } else { 55 + v * 40 };
            (level(i / 36), level(i / 6 % 6), level(i % 6))
        }
        _ => {
            let v = 8 + (i - 232) * 10;
            (v, v, v)
        }
    };
    match c {
        Color::Reset => default,
        Color::Black => BASE[0],
        Color::Red => BASE[1],
        Color::Green => BASE[2],
        Color::Yellow => BASE[3],
        Color::Blue => BASE[4],
        Color::Magenta => BASE[5],
        Color::Cyan => BASE[6],
        Color::Gray => BASE[7],
        Color::DarkGray => BASE[8],
        Color::LightRed => BASE[9],
        Color::LightGreen => BASE[10],
        Color::LightYellow => BASE[11],
        Color::LightBlue => BASE[12],
        Color::LightMagenta => BASE[13],
        Color::LightCyan => BASE[14],
        Color::White => BASE[15],
        Color::Indexed(i) => indexed(i),
        Color::Rgb(r, g, b) => (r, g, b),
    }
}

fn luminance((r, g, b): (u8, u8, u8)) -> f64 {
    let lin = |v: u8| {
        let v = f64::from(v) / 255.0;
        if v <= 0.03928 { v / 12.92 } else { ((v + 0.055) / 1.055).powf(2.4) }
    };
    0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b)
}

fn contrast(a: (u8, u8, u8), b: (u8, u8, u8)) -> f64 {
    let (la, lb) = (luminance(a), luminance(b));
    (la.max(lb) + 0.05) / (la.min(lb) + 0.05)
}

/// Every visible character with less than 3:1 contrast, as "(x,y) 'c' ratio".
fn unreadable(buf: &Buffer, terminal_fg: (u8, u8, u8), terminal_bg: (u8, u8, u8)) -> Vec<String> {
    let mut bad = Vec::new();
    for p in buf.area.positions() {
        let cell = &buf[p];
        if cell.symbol().trim().is_empty() {
            continue;
        }
        let mut fg = rgb(cell.fg, terminal_fg);
        let mut bg = rgb(cell.bg, terminal_bg);
        if cell.modifier.contains(Modifier::REVERSED) {
            std::mem::swap(&mut fg, &mut bg);
        }
        if cell.modifier.contains(Modifier::DIM) {
            let half = |f: u8, b: u8| ((u16::from(f) + u16::from(b)) / 2) as u8;
            fg = (half(fg.0, bg.0), half(fg.1, bg.1), half(fg.2, bg.2));
        }
        let ratio = contrast(fg, bg);
        if ratio < 3.0 {
            bad.push(format!("({},{}) {:?} {ratio:.1}", p.x, p.y, cell.symbol()));
        }
    }
    bad
}

/// The screen's text, then one line per run of equally styled cells that is not the default.
fn styled(buf: &Buffer) -> String {
    let mut out = String::new();
    for y in 0..buf.area.height {
        let line: String = (0..buf.area.width).map(|x| buf[(x, y)].symbol().to_string()).collect();
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out.push_str("--- styles (row: columns fg/bg/modifiers) ---\n");
    for y in 0..buf.area.height {
        let mut x = 0;
        while x < buf.area.width {
            let c = &buf[(x, y)];
            let style = (c.fg, c.bg, c.modifier);
            let start = x;
            while x < buf.area.width && (buf[(x, y)].fg, buf[(x, y)].bg, buf[(x, y)].modifier) == style {
                x += 1;
            }
            if style != (Color::Reset, Color::Reset, Modifier::empty()) {
                out.push_str(&format!("{y}: {start}-{} {:?}/{:?}/{:?}\n", x - 1, style.0, style.1, style.2));
            }
        }
    }
    out
}

const WHITE: (u8, u8, u8) = (255, 255, 255);
const BLACK: (u8, u8, u8) = (0, 0, 0);
const XTERM_FG: (u8, u8, u8) = (229, 229, 229);

#[test]
fn each_theme_is_readable_on_its_background() {
    for (theme, name, fg, bg) in
        [(Theme::LIGHT, "light_filled", BLACK, WHITE), (Theme::DARK, "dark_filled", XTERM_FG, BLACK)]
    {
        let mut app = filled();
        let screen = draw(&mut app, theme);
        let bad = unreadable(&screen, fg, bg);
        assert!(bad.is_empty(), "{name}: {} unreadable characters, e.g. {:?}", bad.len(), &bad[..bad.len().min(8)]);
        insta::assert_snapshot!(name, styled(&screen));
    }
}

#[test]
fn the_dark_colours_on_white_would_not_be_readable() {
    // What mlterm showed: the dark theme's dim labels vanish on a white background.
    let mut app = filled();
    let screen = draw(&mut app, Theme::DARK);
    assert!(!unreadable(&screen, BLACK, WHITE).is_empty(), "the check sees the problem it guards against");
}

#[test]
fn the_help_overlay_is_readable_in_both_themes() {
    for (theme, fg, bg) in [(Theme::LIGHT, BLACK, WHITE), (Theme::DARK, XTERM_FG, BLACK)] {
        let mut app = filled();
        send(&mut app, KeyCode::F(1), KeyModifiers::NONE);
        let screen = draw(&mut app, theme);
        let text: String = screen.content().iter().map(|c| c.symbol()).collect();
        assert!(text.contains("kontext — keys"), "the help is open");
        let bad = unreadable(&screen, fg, bg);
        assert!(bad.is_empty(), "{theme:?}: {:?}", &bad[..bad.len().min(8)]);
    }
}
