//! Colours, or none: with NO_COLOR set (or `colors = false`) only bold/reverse/dim are used.

use ratatui::style::{Color, Modifier, Style};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Theme {
    pub color: bool,
}

impl Theme {
    /// Colour unless NO_COLOR is set to anything non-empty (no-color.org) or the config says no.
    pub fn from_env(config_colors: Option<bool>) -> Theme {
        Theme::decide(std::env::var_os("NO_COLOR").as_deref(), config_colors)
    }

    pub fn decide(no_color: Option<&std::ffi::OsStr>, config_colors: Option<bool>) -> Theme {
        let no_color = no_color.is_some_and(|v| !v.is_empty());
        Theme { color: !no_color && config_colors.unwrap_or(true) }
    }

    fn fg(&self, c: Color) -> Style {
        if self.color { Style::default().fg(c) } else { Style::default() }
    }

    pub fn title(&self) -> Style {
        Style::default().add_modifier(Modifier::BOLD)
    }
    pub fn title_focused(&self) -> Style {
        if self.color {
            Style::default().fg(Color::Black).bg(Color::Cyan).add_modifier(Modifier::BOLD)
        } else {
            Style::default().add_modifier(Modifier::REVERSED | Modifier::BOLD)
        }
    }
    pub fn border(&self) -> Style {
        self.fg(Color::DarkGray)
    }
    pub fn border_focused(&self) -> Style {
        self.fg(Color::Cyan)
    }
    pub fn selected(&self) -> Style {
        if self.color {
            Style::default().bg(Color::DarkGray).add_modifier(Modifier::BOLD)
        } else {
            Style::default().add_modifier(Modifier::REVERSED)
        }
    }
    pub fn dim(&self) -> Style {
        self.fg(Color::Gray).add_modifier(Modifier::DIM)
    }
    pub fn error(&self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }
    pub fn ok(&self) -> Style {
        self.fg(Color::Green)
    }
    pub fn busy(&self) -> Style {
        self.fg(Color::Yellow)
    }
    pub fn key(&self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }
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
        let mono = Theme { color: false };
        assert_eq!(mono.error().fg, None, "no colour at all in monochrome");
        assert_eq!(mono.border_focused().fg, None);
    }
}
