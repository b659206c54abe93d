//! Colours for a dark or a light background, or none: with NO_COLOR set (or `colors = false`)
//! only bold/reverse/dim are used.
//!
//! Which background: the config's `theme = "dark" | "light"`, or with `"auto"` (the default) the
//! terminal's answer to the OSC 11 query made by the graphics probe, else `COLORFGBG`, else dark.
//! Every colour pair names both sides (the selected row sets its text colour too), because a
//! terminal's default text colour is black on a light background.

use std::fmt;
use std::str::FromStr;

use ratatui::style::{Color, Modifier, Style};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Theme {
    pub color: bool,
    /// Colours chosen for a light (white) background.
    pub light: bool,
}

/// The config's `theme` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ThemeChoice {
    #[default]
    Auto,
    Dark,
    Light,
}

impl FromStr for ThemeChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" | "" => Ok(ThemeChoice::Auto),
            "dark" => Ok(ThemeChoice::Dark),
            "light" => Ok(ThemeChoice::Light),
            _ => Err(format!("unknown theme {s:?} (expected auto, dark or light)")),
        }
    }
}

impl fmt::Display for ThemeChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ThemeChoice::Auto => "auto",
            ThemeChoice::Dark => "dark",
            ThemeChoice::Light => "light",
        })
    }
}

/// 256-colour palette entries that read well on white (xterm's values: #585858, #008700, #af5f00,
/// #0000d7, #d0d0d0).
const LIGHT_DIM: Color = Color::Indexed(240);
const LIGHT_OK: Color = Color::Indexed(28);
const LIGHT_BUSY: Color = Color::Indexed(130);
const LIGHT_ACCENT: Color = Color::Indexed(20);
const LIGHT_SELECTED_BG: Color = Color::Indexed(252);

impl Theme {
    pub const DARK: Theme = Theme { color: true, light: false };
    pub const LIGHT: Theme = Theme { color: true, light: true };
    pub const MONO: Theme = Theme { color: false, light: false };

    /// Colour unless NO_COLOR is set to anything non-empty (no-color.org) or the config says no;
    /// light or dark from the config's `theme`, the probed `background`, or `COLORFGBG`.
    pub fn from_env(config_colors: Option<bool>, choice: ThemeChoice, background: Option<(u8, u8, u8)>) -> Theme {
        let mut theme = Theme::decide(std::env::var_os("NO_COLOR").as_deref(), config_colors);
        theme.light = match choice {
            ThemeChoice::Dark => false,
            ThemeChoice::Light => true,
            ThemeChoice::Auto => background
                .map(is_light)
                .or_else(|| std::env::var("COLORFGBG").ok().and_then(|v| colorfgbg_is_light(&v)))
                .unwrap_or(false),
        };
        theme
    }

    pub fn decide(no_color: Option<&std::ffi::OsStr>, config_colors: Option<bool>) -> Theme {
        let no_color = no_color.is_some_and(|v| !v.is_empty());
        Theme { color: !no_color && config_colors.unwrap_or(true), light: false }
    }

    /// `dark` or `light` colour, or no colour at all in monochrome.
    fn pick(&self, dark: Color, light: Color) -> Style {
        match (self.color, self.light) {
            (false, _) => Style::default(),
            (true, false) => Style::default().fg(dark),
            (true, true) => Style::default().fg(light),
        }
    }

    pub fn title(&self) -> Style {
        Style::default().add_modifier(Modifier::BOLD)
    }
    pub fn title_focused(&self) -> Style {
        match (self.color, self.light) {
            (false, _) => Style::default().add_modifier(Modifier::REVERSED | Modifier::BOLD),
            (true, false) => Style::default().fg(Color::Black).bg(Color::Cyan).add_modifier(Modifier::BOLD),
            (true, true) => Style::default().fg(Color::White).bg(LIGHT_ACCENT).add_modifier(Modifier::BOLD),
        }
    }
    pub fn border(&self) -> Style {
        self.pick(Color::DarkGray, LIGHT_DIM)
    }
    pub fn border_focused(&self) -> Style {
        self.pick(Color::Cyan, LIGHT_ACCENT)
    }
    pub fn selected(&self) -> Style {
        match (self.color, self.light) {
            (false, _) => Style::default().add_modifier(Modifier::REVERSED),
            (true, false) => Style::default().fg(Color::White).bg(Color::DarkGray).add_modifier(Modifier::BOLD),
            (true, true) => Style::default().fg(Color::Black).bg(LIGHT_SELECTED_BG).add_modifier(Modifier::BOLD),
        }
    }
    pub fn dim(&self) -> Style {
        // DIM on a light background fades text to nearly nothing: a dark grey reads as secondary.
        if self.color && self.light {
            self.pick(LIGHT_DIM, LIGHT_DIM)
        } else {
            self.pick(Color::Gray, Color::Gray).add_modifier(Modifier::DIM)
        }
    }
    pub fn error(&self) -> Style {
        self.pick(Color::Red, Color::Red).add_modifier(Modifier::BOLD)
    }
    pub fn ok(&self) -> Style {
        self.pick(Color::Green, LIGHT_OK)
    }
    pub fn busy(&self) -> Style {
        self.pick(Color::Yellow, LIGHT_BUSY)
    }
    pub fn key(&self) -> Style {
        self.pick(Color::Cyan, LIGHT_ACCENT).add_modifier(Modifier::BOLD)
    }
}

/// A background is light when its relative luminance (sRGB weights) is above the middle.
pub fn is_light((r, g, b): (u8, u8, u8)) -> bool {
    let lum = 0.2126 * f64::from(r) + 0.7152 * f64::from(g) + 0.0722 * f64::from(b);
    lum > 127.5
}

/// `COLORFGBG="fg;bg"` (rxvt, Konsole): background 7 or 15 is light, 0–6 and 8 dark.
fn colorfgbg_is_light(value: &str) -> Option<bool> {
    let bg: u8 = value.rsplit(';').next()?.trim().parse().ok()?;
    Some(matches!(bg, 7 | 9..=15))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn no_color_and_the_config_turn_colours_off() {
        assert!(Theme::decide(None, None).color);
        assert!(!Theme::decide(Some(OsStr::new("1")), None).color);
        assert!(Theme::decide(Some(OsStr::new("")), None).color, "an empty NO_COLOR does not count");
        assert!(!Theme::decide(None, Some(false)).color);
        let mono = Theme::MONO;
        assert_eq!(mono.error().fg, None, "no colour at all in monochrome");
        assert_eq!(mono.border_focused().fg, None);
    }

    #[test]
    fn the_background_decides_light_or_dark_unless_the_config_says() {
        assert!(is_light((255, 255, 255)) && is_light((240, 240, 220)));
        assert!(!is_light((0, 0, 0)) && !is_light((30, 30, 46)));
        assert!(Theme::from_env(None, ThemeChoice::Auto, Some((255, 255, 255))).light);
        assert!(!Theme::from_env(None, ThemeChoice::Dark, Some((255, 255, 255))).light, "config wins");
        assert!(Theme::from_env(None, ThemeChoice::Light, Some((0, 0, 0))).light);
        assert_eq!(colorfgbg_is_light("0;15"), Some(true));
        assert_eq!(colorfgbg_is_light("15;default;0"), Some(false));
        assert_eq!(colorfgbg_is_light("garbage"), None);
        assert_eq!("LIGHT".parse::<ThemeChoice>(), Ok(ThemeChoice::Light));
        assert!("white".parse::<ThemeChoice>().unwrap_err().contains("auto, dark or light"));
    }

    #[test]
    fn the_selected_row_names_its_text_colour_in_both_themes() {
        for theme in [Theme::DARK, Theme::LIGHT] {
            let s = theme.selected();
            assert!(s.fg.is_some() && s.bg.is_some() && s.fg != s.bg, "{theme:?}: {s:?}");
        }
        assert!(!Theme::LIGHT.dim().add_modifier.contains(Modifier::DIM), "no DIM on white");
    }
}
