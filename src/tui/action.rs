//! Named actions and the keymap that turns key presses into them. Bindings are data, so the
//! config file can change them (`[keys]` in config.example.toml) and the help overlay lists them.

use std::collections::HashMap;
use std::fmt;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::pane::{Pane, Scope};

/// Something the user can ask for, independent of the key that asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Quit,
    ForceQuit,
    Submit,
    Sweep,
    NextPane,
    PrevPane,
    FocusPrompt,
    FocusImages,
    FocusParams,
    FocusJobs,
    FocusHistory,
    FocusResults,
    Help,
    Close,
    OpenEditor,
    RecallOlder,
    RecallNewer,
    RecallSearch,
    Up,
    Down,
    Left,
    Right,
    BigLeft,
    BigRight,
    Confirm,
    Add,
    Delete,
    MoveUp,
    MoveDown,
    Cancel,
    Rerun,
    Search,
    CycleFilter,
    ToggleSideBySide,
    CopyPath,
    CopyRequestId,
    OpenFile,
    Star,
    MarkA,
    MarkB,
    Compare,
    SwapAB,
    ToggleSplit,
    PrevPage,
    NextPage,
    ShowSweep,
}

impl Action {
    /// Name used in the config file and the help overlay.
    pub fn name(self) -> &'static str {
        use Action::*;
        match self {
            Quit => "quit",
            ForceQuit => "force_quit",
            Submit => "submit",
            Sweep => "sweep",
            NextPane => "next_pane",
            PrevPane => "prev_pane",
            FocusPrompt => "focus_prompt",
            FocusImages => "focus_images",
            FocusParams => "focus_params",
            FocusJobs => "focus_jobs",
            FocusHistory => "focus_history",
            FocusResults => "focus_results",
            Help => "help",
            Close => "close",
            OpenEditor => "open_editor",
            RecallOlder => "recall_older",
            RecallNewer => "recall_newer",
            RecallSearch => "recall_search",
            Up => "up",
            Down => "down",
            Left => "left",
            Right => "right",
            BigLeft => "big_left",
            BigRight => "big_right",
            Confirm => "confirm",
            Add => "add",
            Delete => "delete",
            MoveUp => "move_up",
            MoveDown => "move_down",
            Cancel => "cancel_job",
            Rerun => "rerun",
            Search => "search",
            CycleFilter => "cycle_filter",
            ToggleSideBySide => "side_by_side",
            CopyPath => "copy",
            CopyRequestId => "copy_request_id",
            OpenFile => "open",
            Star => "star",
            MarkA => "mark_a",
            MarkB => "mark_b",
            Compare => "compare",
            SwapAB => "swap_ab",
            ToggleSplit => "split",
            PrevPage => "prev_page",
            NextPage => "next_page",
            ShowSweep => "show_sweep",
        }
    }

    pub fn describe(self) -> &'static str {
        use Action::*;
        match self {
            Quit => "quit (where no text is being edited)",
            ForceQuit => "quit from anywhere",
            Submit => "submit the request",
            Sweep => "sweep: the draft, many ways",
            NextPane => "next pane",
            PrevPane => "previous pane",
            FocusPrompt => "go to Prompt",
            FocusImages => "go to Images",
            FocusParams => "go to Parameters",
            FocusJobs => "go to Jobs",
            FocusHistory => "go to History",
            FocusResults => "go to Results",
            Help => "this help (F1 in text fields too)",
            Close => "close / cancel / leave full screen",
            OpenEditor => "edit the prompt in $VISUAL/$EDITOR",
            RecallOlder => "recall an older prompt",
            RecallNewer => "recall a newer prompt",
            RecallSearch => "search earlier prompts",
            Up => "up / previous",
            Down => "down / next",
            Left => "decrease / previous value",
            Right => "increase / next value",
            BigLeft => "decrease by a big step",
            BigRight => "increase by a big step",
            Confirm => "open / accept / load",
            Add => "add an image (URL or path)",
            Delete => "remove / delete",
            MoveUp => "move image up",
            MoveDown => "move image down",
            Cancel => "cancel the selected job",
            Rerun => "re-run the selected entry",
            Search => "search history",
            CycleFilter => "filter history by state",
            ToggleSideBySide => "inputs and outputs side by side",
            CopyPath => "copy image path or URL (OSC 52)",
            CopyRequestId => "copy the request id (OSC 52)",
            OpenFile => "open the image in the desktop viewer",
            Star => "star / unstar: a keeper",
            MarkA => "mark the output as A",
            MarkB => "mark the output as B",
            Compare => "compare A and B",
            SwapAB => "compare: show the other",
            ToggleSplit => "compare: split or flip",
            PrevPage => "sweep grid: previous page",
            NextPage => "sweep grid: next page",
            ShowSweep => "its sweep as a grid in Results",
        }
    }
}

/// A key with modifiers, as written in the config ("ctrl-s", "alt-enter", "shift-up", "f5", "?").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyCombo {
    pub code: KeyCode,
    pub mods: KeyModifiers,
}

impl KeyCombo {
    pub const fn new(code: KeyCode, mods: KeyModifiers) -> KeyCombo {
        KeyCombo { code, mods }
    }

    /// The key press this combination stands for (what a test or a hint presses).
    pub fn to_event(self) -> KeyEvent {
        let mods = match self.code {
            KeyCode::Char(c) if c.is_ascii_uppercase() && !self.mods.contains(KeyModifiers::CONTROL) => {
                self.mods | KeyModifiers::SHIFT
            }
            _ => self.mods,
        };
        KeyEvent::new(self.code, mods)
    }

    pub fn from_event(e: &KeyEvent) -> KeyCombo {
        let mut mods = e.modifiers & (KeyModifiers::CONTROL | KeyModifiers::ALT | KeyModifiers::SHIFT);
        let code = match e.code {
            // Shift is part of the character itself.
            KeyCode::Char(c) => {
                mods.remove(KeyModifiers::SHIFT);
                KeyCode::Char(if mods.contains(KeyModifiers::CONTROL) { c.to_ascii_lowercase() } else { c })
            }
            KeyCode::BackTab => {
                mods.remove(KeyModifiers::SHIFT);
                KeyCode::BackTab
            }
            other => other,
        };
        KeyCombo { code, mods }
    }

    pub fn parse(text: &str) -> Result<KeyCombo, String> {
        let t = text.trim();
        if t.is_empty() {
            return Err("empty key".into());
        }
        let mut mods = KeyModifiers::NONE;
        let mut rest = t;
        loop {
            let lower = rest.to_ascii_lowercase();
            let (m, len) = if lower.starts_with("ctrl-") {
                (KeyModifiers::CONTROL, 5)
            } else if lower.starts_with("alt-") {
                (KeyModifiers::ALT, 4)
            } else if lower.starts_with("shift-") {
                (KeyModifiers::SHIFT, 6)
            } else {
                break;
            };
            if rest.len() == len {
                break;
            }
            mods |= m;
            rest = &rest[len..];
        }
        let lower = rest.to_ascii_lowercase();
        let code = match lower.as_str() {
            "enter" | "return" => KeyCode::Enter,
            "esc" | "escape" => KeyCode::Esc,
            "tab" => KeyCode::Tab,
            "backtab" => KeyCode::BackTab,
            "space" => KeyCode::Char(' '),
            "up" => KeyCode::Up,
            "down" => KeyCode::Down,
            "left" => KeyCode::Left,
            "right" => KeyCode::Right,
            "home" => KeyCode::Home,
            "end" => KeyCode::End,
            "pageup" | "pgup" => KeyCode::PageUp,
            "pagedown" | "pgdn" => KeyCode::PageDown,
            "delete" | "del" => KeyCode::Delete,
            "backspace" => KeyCode::Backspace,
            f if f.starts_with('f') && f.len() > 1 && f[1..].chars().all(|c| c.is_ascii_digit()) => {
                KeyCode::F(f[1..].parse().map_err(|_| format!("bad function key {rest:?}"))?)
            }
            _ => {
                let mut chars = rest.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) => {
                        KeyCode::Char(if mods.contains(KeyModifiers::CONTROL) { c.to_ascii_lowercase() } else { c })
                    }
                    _ => return Err(format!("unknown key {rest:?} (examples: ctrl-s, alt-enter, f5, shift-up, q, ?)")),
                }
            }
        };
        Ok(KeyCombo { code, mods })
    }
}

impl fmt::Display for KeyCombo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.mods.contains(KeyModifiers::CONTROL) {
            f.write_str("Ctrl-")?;
        }
        if self.mods.contains(KeyModifiers::ALT) {
            f.write_str("Alt-")?;
        }
        if self.mods.contains(KeyModifiers::SHIFT) {
            f.write_str("Shift-")?;
        }
        match self.code {
            KeyCode::Char(' ') => f.write_str("Space"),
            KeyCode::Char(c) if self.mods.contains(KeyModifiers::CONTROL) => write!(f, "{}", c.to_ascii_uppercase()),
            KeyCode::Char(c) => write!(f, "{c}"),
            KeyCode::F(n) => write!(f, "F{n}"),
            KeyCode::Enter => f.write_str("Enter"),
            KeyCode::Esc => f.write_str("Esc"),
            KeyCode::Tab => f.write_str("Tab"),
            KeyCode::BackTab => f.write_str("Shift-Tab"),
            KeyCode::Up => f.write_str("Up"),
            KeyCode::Down => f.write_str("Down"),
            KeyCode::Left => f.write_str("Left"),
            KeyCode::Right => f.write_str("Right"),
            KeyCode::Delete => f.write_str("Del"),
            KeyCode::Backspace => f.write_str("Backspace"),
            KeyCode::PageUp => f.write_str("PgUp"),
            KeyCode::PageDown => f.write_str("PgDn"),
            other => write!(f, "{other:?}"),
        }
    }
}

/// Keys that are commands even while a text field has the keys: Ctrl or Alt chords, function
/// keys, Tab. Plain characters, Enter and Esc belong to the field.
pub fn is_command_key(key: &KeyEvent) -> bool {
    key.modifiers.intersects(KeyModifiers::CONTROL | KeyModifiers::ALT)
        || matches!(key.code, KeyCode::F(_) | KeyCode::Tab | KeyCode::BackTab)
}

/// Bindings per scope; the first match in the focused scope wins, then Global.
#[derive(Debug, Clone)]
pub struct Keymap {
    bindings: Vec<(Scope, KeyCombo, Action)>,
}

const fn k(code: KeyCode, mods: KeyModifiers) -> KeyCombo {
    KeyCombo::new(code, mods)
}
const NONE: KeyModifiers = KeyModifiers::NONE;
const CTRL: KeyModifiers = KeyModifiers::CONTROL;
const ALT: KeyModifiers = KeyModifiers::ALT;
const SHIFT: KeyModifiers = KeyModifiers::SHIFT;

impl Default for Keymap {
    fn default() -> Keymap {
        use Action as A;
        use KeyCode::*;
        const GLOBAL: Scope = Scope::Global;
        const PROMPT: Scope = Scope::Pane(Pane::Prompt);
        const IMAGES: Scope = Scope::Pane(Pane::Images);
        const PARAMS: Scope = Scope::Pane(Pane::Params);
        const JOBS: Scope = Scope::Pane(Pane::Jobs);
        const HISTORY: Scope = Scope::Pane(Pane::History);
        const RESULTS: Scope = Scope::Pane(Pane::Results);
        let mut b = vec![
            (GLOBAL, k(Char('q'), CTRL), A::ForceQuit),
            (GLOBAL, k(Char('q'), NONE), A::Quit),
            (GLOBAL, k(F(5), NONE), A::Submit),
            (GLOBAL, k(Char('s'), CTRL), A::Submit),
            (GLOBAL, k(Enter, ALT), A::Submit),
            (GLOBAL, k(Enter, CTRL), A::Submit),
            (GLOBAL, k(F(6), NONE), A::Sweep),
            (GLOBAL, k(Tab, NONE), A::NextPane),
            (GLOBAL, k(BackTab, NONE), A::PrevPane),
            (GLOBAL, k(Char('1'), ALT), A::FocusPrompt),
            (GLOBAL, k(Char('2'), ALT), A::FocusImages),
            (GLOBAL, k(Char('3'), ALT), A::FocusParams),
            (GLOBAL, k(Char('4'), ALT), A::FocusJobs),
            (GLOBAL, k(Char('5'), ALT), A::FocusHistory),
            (GLOBAL, k(Char('6'), ALT), A::FocusResults),
            (GLOBAL, k(Char('?'), NONE), A::Help),
            (GLOBAL, k(F(1), NONE), A::Help),
            (GLOBAL, k(Esc, NONE), A::Close),
            (GLOBAL, k(Up, NONE), A::Up),
            (GLOBAL, k(Down, NONE), A::Down),
            (GLOBAL, k(Char('k'), NONE), A::Up),
            (GLOBAL, k(Char('j'), NONE), A::Down),
            (GLOBAL, k(Left, NONE), A::Left),
            (GLOBAL, k(Right, NONE), A::Right),
            (GLOBAL, k(Enter, NONE), A::Confirm),
            (PROMPT, k(Char('e'), CTRL), A::OpenEditor),
            (PROMPT, k(Up, CTRL), A::RecallOlder),
            (PROMPT, k(Down, CTRL), A::RecallNewer),
            (PROMPT, k(Char('r'), CTRL), A::RecallSearch),
            (IMAGES, k(Char('a'), NONE), A::Add),
            (IMAGES, k(Char('d'), NONE), A::Delete),
            (IMAGES, k(Delete, NONE), A::Delete),
            (IMAGES, k(Up, SHIFT), A::MoveUp),
            (IMAGES, k(Down, SHIFT), A::MoveDown),
            (PARAMS, k(Left, SHIFT), A::BigLeft),
            (PARAMS, k(Right, SHIFT), A::BigRight),
            (PARAMS, k(Char('h'), NONE), A::Left),
            (PARAMS, k(Char('l'), NONE), A::Right),
            (JOBS, k(Char('c'), NONE), A::Cancel),
            (JOBS, k(Char('r'), NONE), A::Rerun),
            (HISTORY, k(Char('/'), NONE), A::Search),
            (HISTORY, k(Char('f'), NONE), A::CycleFilter),
            (HISTORY, k(Char('r'), NONE), A::Rerun),
            (HISTORY, k(Char('d'), NONE), A::Delete),
            (HISTORY, k(Char('s'), NONE), A::Star),
            (HISTORY, k(Char('g'), NONE), A::ShowSweep),
            (RESULTS, k(Char('v'), NONE), A::ToggleSideBySide),
            (RESULTS, k(Char('y'), NONE), A::CopyPath),
            (RESULTS, k(Char('Y'), NONE), A::CopyRequestId),
            (RESULTS, k(Char('o'), NONE), A::OpenFile),
            (RESULTS, k(Char('s'), NONE), A::Star),
            (RESULTS, k(Char('a'), NONE), A::MarkA),
            (RESULTS, k(Char('b'), NONE), A::MarkB),
            (RESULTS, k(Char('c'), NONE), A::Compare),
            (RESULTS, k(Char('x'), NONE), A::SwapAB),
            (RESULTS, k(Char('t'), NONE), A::ToggleSplit),
            (RESULTS, k(PageUp, NONE), A::PrevPage),
            (RESULTS, k(Char('['), NONE), A::PrevPage),
            (RESULTS, k(PageDown, NONE), A::NextPage),
            (RESULTS, k(Char(']'), NONE), A::NextPage),
        ];
        // Results and Jobs navigate left/right between images too.
        b.push((RESULTS, k(Char('h'), NONE), A::Left));
        b.push((RESULTS, k(Char('l'), NONE), A::Right));
        Keymap { bindings: b }
    }
}

impl Keymap {
    /// Applies `[keys]` overrides: action name → list of keys. The action's default keys are
    /// replaced in every scope it was bound in (Delete in Images and in History alike).
    pub fn with_overrides(mut self, overrides: &HashMap<String, Vec<String>>) -> Result<Keymap, String> {
        let mut names: Vec<&String> = overrides.keys().collect();
        // The same config gives the same keymap, whatever the map's order.
        names.sort();
        for name in names {
            let action = self
                .bindings
                .iter()
                .map(|(_, _, a)| *a)
                .find(|a| a.name() == name)
                .ok_or_else(|| format!("[keys] {name:?} is not an action; see the help overlay (F1) for names"))?;
            let mut scopes: Vec<Scope> = Vec::new();
            for (s, _, a) in &self.bindings {
                if *a == action && !scopes.contains(s) {
                    scopes.push(*s);
                }
            }
            self.bindings.retain(|(_, _, a)| *a != action);
            for key in &overrides[name] {
                let combo = KeyCombo::parse(key).map_err(|e| format!("[keys] {name}: {e}"))?;
                for scope in &scopes {
                    self.bindings.insert(0, (*scope, combo, action));
                }
            }
        }
        Ok(self)
    }

    pub fn lookup(&self, scope: Scope, key: &KeyEvent) -> Option<Action> {
        let combo = KeyCombo::from_event(key);
        let find = |s: Scope| self.bindings.iter().find(|(bs, c, _)| *bs == s && *c == combo).map(|(_, _, a)| *a);
        find(scope).or_else(|| find(Scope::Global))
    }

    /// The first key that asks for `action` in `scope` (its own bindings, then global ones that
    /// it does not shadow). `command_only`: only keys that work while a text field has the keys
    /// (see [`is_command_key`]).
    pub fn first_key(&self, scope: Scope, action: Action, command_only: bool) -> Option<KeyCombo> {
        self.bindings
            .iter()
            .filter(|(s, _, a)| *a == action && (*s == scope || *s == Scope::Global))
            .map(|(_, c, _)| *c)
            .filter(|c| !command_only || is_command_key(&c.to_event()))
            .find(|c| self.lookup(scope, &c.to_event()) == Some(action))
    }

    /// Keys bound to `action`, for display ("F5 / Ctrl-s / Alt-Enter").
    pub fn keys_for(&self, action: Action) -> String {
        let keys: Vec<String> =
            self.bindings.iter().filter(|(_, _, a)| *a == action).map(|(_, c, _)| c.to_string()).collect();
        keys.join(" / ")
    }

    /// (scope, keys, action) rows for the help overlay: each action once per scope it is bound in.
    pub fn help_rows(&self) -> Vec<(Scope, String, Action)> {
        let mut rows: Vec<(Scope, String, Action)> = Vec::new();
        for (scope, combo, action) in &self.bindings {
            let key = combo.to_string();
            match rows.iter_mut().find(|(s, _, a)| s == scope && a == action) {
                Some((_, keys, _)) if !keys.split(" / ").any(|k| k == key) => {
                    keys.push_str(" / ");
                    keys.push_str(&key);
                }
                Some(_) => {}
                None => rows.push((*scope, key, *action)),
            }
        }
        rows.sort_by_key(|(s, _, _)| match s {
            Scope::Global => 0,
            Scope::Pane(p) => p.number(),
        });
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_keys() {
        for (text, shown) in
            [("ctrl-s", "Ctrl-S"), ("alt-enter", "Alt-Enter"), ("f5", "F5"), ("shift-up", "Shift-Up"), ("?", "?")]
        {
            assert_eq!(KeyCombo::parse(text).unwrap().to_string(), shown);
        }
        assert!(KeyCombo::parse("hyper-x").is_err());
    }

    #[test]
    fn focused_scope_wins_then_global() {
        let km = Keymap::default();
        let key = |c, m| KeyEvent::new(c, m);
        assert_eq!(km.lookup(Scope::Pane(Pane::Jobs), &key(KeyCode::Char('c'), NONE)), Some(Action::Cancel));
        assert_eq!(km.lookup(Scope::Pane(Pane::Images), &key(KeyCode::Char('c'), NONE)), None);
        assert_eq!(km.lookup(Scope::Pane(Pane::Images), &key(KeyCode::F(5), NONE)), Some(Action::Submit));
        assert_eq!(km.lookup(Scope::Pane(Pane::Results), &key(KeyCode::Char('Y'), SHIFT)), Some(Action::CopyRequestId));
        assert_eq!(km.lookup(Scope::Pane(Pane::Prompt), &key(KeyCode::Char('Q'), CTRL)), Some(Action::ForceQuit));
    }

    #[test]
    fn overrides_replace_an_actions_keys() {
        let mut o = HashMap::new();
        o.insert("submit".to_string(), vec!["ctrl-g".to_string()]);
        let km = Keymap::default().with_overrides(&o).unwrap();
        assert_eq!(km.keys_for(Action::Submit), "Ctrl-G");
        let mut bad = HashMap::new();
        bad.insert("launch".to_string(), vec!["x".to_string()]);
        assert!(Keymap::default().with_overrides(&bad).unwrap_err().contains("not an action"));
    }

    #[test]
    fn the_sweep_key_is_global_and_a_command_key_inside_text_fields() {
        let km = Keymap::default();
        let f6 = km.first_key(Scope::Pane(Pane::Prompt), Action::Sweep, true).unwrap();
        assert_eq!(f6.to_string(), "F6");
        let mut o = HashMap::new();
        o.insert("sweep".to_string(), vec!["ctrl-w".to_string()]);
        let km = Keymap::default().with_overrides(&o).unwrap();
        let ctrl_w = KeyEvent::new(KeyCode::Char('w'), CTRL);
        assert_eq!(km.lookup(Scope::Pane(Pane::Params), &ctrl_w), Some(Action::Sweep));
        assert!(is_command_key(&ctrl_w));
    }

    #[test]
    fn an_override_keeps_every_scope_of_the_action() {
        let mut o = HashMap::new();
        o.insert("delete".to_string(), vec!["x".to_string()]);
        let km = Keymap::default().with_overrides(&o).unwrap();
        let x = KeyEvent::new(KeyCode::Char('x'), NONE);
        assert_eq!(km.lookup(Scope::Pane(Pane::Images), &x), Some(Action::Delete));
        assert_eq!(km.lookup(Scope::Pane(Pane::History), &x), Some(Action::Delete));
        assert_eq!(km.lookup(Scope::Pane(Pane::Images), &KeyEvent::new(KeyCode::Char('d'), NONE)), None);
    }

    #[test]
    fn the_first_key_of_an_action_is_one_that_reaches_it() {
        let km = Keymap::default();
        let help = km.first_key(Scope::Pane(Pane::Jobs), Action::Help, false).unwrap();
        assert_eq!(help.to_string(), "?");
        let in_text = km.first_key(Scope::Pane(Pane::Prompt), Action::Help, true).unwrap();
        assert_eq!(in_text.to_string(), "F1", "? is text in a text field");
        // Up in Images is global; Shift-Up is MoveUp there.
        let up = km.first_key(Scope::Pane(Pane::Images), Action::MoveUp, false).unwrap();
        assert_eq!(km.lookup(Scope::Pane(Pane::Images), &up.to_event()), Some(Action::MoveUp));
        assert_eq!(KeyCombo::parse("Y").unwrap().to_event().modifiers, KeyModifiers::SHIFT);
    }
}
