//! The six panes, in Tab order.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Pane {
    Prompt,
    Images,
    Params,
    Jobs,
    History,
    Results,
}

impl Pane {
    pub const ORDER: [Pane; 6] = [Pane::Prompt, Pane::Images, Pane::Params, Pane::Jobs, Pane::History, Pane::Results];

    pub fn title(self) -> &'static str {
        match self {
            Pane::Prompt => "Prompt",
            Pane::Images => "Images",
            Pane::Params => "Parameters",
            Pane::Jobs => "Jobs",
            Pane::History => "History",
            Pane::Results => "Results",
        }
    }

    pub fn number(self) -> usize {
        Pane::ORDER.iter().position(|p| *p == self).unwrap_or(0) + 1
    }

    /// Where this pane's key bindings live.
    pub fn scope(self) -> Scope {
        Scope::Pane(self)
    }

    pub(crate) fn step(self, by: isize) -> Pane {
        let n = Pane::ORDER.len() as isize;
        Pane::ORDER[((self.number() as isize - 1 + by).rem_euclid(n)) as usize]
    }
}

/// Where a binding applies: everywhere, or in one pane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    Global,
    Pane(Pane),
}

impl Scope {
    pub fn title(self) -> &'static str {
        match self {
            Scope::Global => "Everywhere",
            Scope::Pane(p) => p.title(),
        }
    }
}
