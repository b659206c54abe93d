//! Images pane: the input list (URL, data: URI or local file), the add-line, and a thumbnail of
//! the selected local file. Local files are looked at off the UI task (`Effect::CheckImages`);
//! until the answer comes they show "checking…".

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::layout::{Constraint, Layout};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use super::{Canvas, Hint, PaneBehaviour, PaneEvent, Shared};
use crate::model::{Field, FieldError, ImageSource};
use crate::sanitize::one_line;
use crate::tui::action::Action;
use crate::tui::job_store::JobPhase;
use crate::tui::message::{Effect, ImageInfo, Notice};
use crate::tui::pane::Pane;
use crate::tui::widgets::{clip, pane_block};

#[derive(Debug)]
pub struct ImagesPane {
    /// How many images the selected endpoint takes (0 for text to image).
    limit: usize,
    /// The endpoint's name, for the line that says why it takes none.
    endpoint: String,
    items: Vec<String>,
    selected: usize,
    /// The one-line input while adding an image.
    input: Option<String>,
    /// Per item: what it is ("url", "local 3 KB · inline") and a problem with it, looked up
    /// off the UI task when the list changes — never while drawing or typing.
    info: Vec<ImageInfo>,
    /// Which version of the list `info` should describe; answers for older ones are dropped.
    check_seq: u64,
    /// A look-up of local files is under way.
    checking: bool,
}

impl Default for ImagesPane {
    fn default() -> ImagesPane {
        ImagesPane {
            limit: crate::model::MAX_INPUT_IMAGES,
            endpoint: String::new(),
            items: Vec::new(),
            selected: 0,
            input: None,
            info: Vec::new(),
            check_seq: 0,
            checking: false,
        }
    }
}

/// What an image reference is, and what is wrong with it: reads and decodes a local file, so it
/// runs off the UI task for local files (the runtime calls it on a blocking thread).
pub fn describe_image(source: &ImageSource, data_uri_threshold: u64) -> ImageInfo {
    let mut error = crate::model::check_image_source(source).err();
    let mut size = None;
    // A local file is read and decoded whole (within fal's limits), as `kontext run` does, so
    // a damaged file is flagged here and never sent.
    if let (None, ImageSource::Local(p)) = (&error, source) {
        match crate::runner::check_local_image(p).and_then(|()| crate::runner::check_input_file(p)) {
            Ok(image) => size = Some((image.width, image.height)),
            Err(e) => error = Some(e),
        }
    }
    let (tag, local_file) = match source {
        ImageSource::Url(_) => ("url".to_string(), None),
        ImageSource::DataUri(d) => (format!("inline {} KB", d.len().div_ceil(1024)), None),
        ImageSource::Local(p) => match std::fs::metadata(p) {
            Ok(m) => {
                let how = if m.len() <= data_uri_threshold { "inline" } else { "upload" };
                (format!("local {} KB · {how}", m.len().div_ceil(1024)), Some(p.clone()))
            }
            Err(_) => ("missing".to_string(), None),
        },
    };
    ImageInfo { tag, error, local_file, size }
}

/// `describe_image` for a whole list.
pub fn describe_images(items: &[String], data_uri_threshold: u64) -> Vec<ImageInfo> {
    items.iter().map(|t| describe_image(&ImageSource::classify(t), data_uri_threshold)).collect()
}

impl ImagesPane {
    /// The selected endpoint's limit: 0 (text to image), 1 or a list's maximum. Images already
    /// in the list stay (validation names the extra ones), so switching back loses nothing.
    pub fn follow_endpoint(&mut self, schema: &crate::model::EndpointSchema) {
        self.limit = schema.images.max();
        self.endpoint = crate::tui::form::endpoint_short(schema);
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    fn no_images_line(&self) -> String {
        format!("no input image: {} makes one from the prompt alone", self.endpoint)
    }

    fn refusal(&self, refused: usize) -> String {
        match self.limit {
            0 => format!("{}: {refused} not added", self.no_images_line()),
            max => format!("this endpoint takes at most {max} image(s): {refused} not added"),
        }
    }

    pub fn items(&self) -> &[String] {
        &self.items
    }

    pub fn selected(&self) -> usize {
        self.selected
    }

    pub fn info(&self) -> &[ImageInfo] {
        &self.info
    }

    /// The add-line is open.
    pub fn is_adding(&self) -> bool {
        self.input.is_some()
    }

    /// Local files are still being looked at: a submit must wait.
    pub fn is_checking(&self) -> bool {
        self.checking
    }

    /// The problems the file look-up found, one per image.
    /// Each image's size where it is known (local files, once looked at), in the list's order.
    pub fn sizes(&self) -> Vec<Option<(u32, u32)>> {
        (0..self.items.len()).map(|i| self.info.get(i).and_then(|info| info.size)).collect()
    }

    pub fn file_errors(&self) -> Vec<FieldError> {
        self.info
            .iter()
            .enumerate()
            .filter_map(|(i, info)| {
                info.error.clone().map(|message| FieldError { field: Field::ImageUrls(Some(i)), message })
            })
            .collect()
    }

    /// Replaces the list (a request loaded from the history or re-run); stored text is cleaned.
    pub fn set_items(&mut self, items: &[String], shared: Shared) -> Vec<PaneEvent> {
        self.items = items.iter().map(|i| one_line(i)).collect();
        self.selected = 0;
        self.input = None;
        self.changed(shared)
    }

    /// The answer of a file look-up; dropped when the list has changed since.
    pub fn on_checked(&mut self, seq: u64, info: Vec<ImageInfo>) -> Vec<PaneEvent> {
        if seq != self.check_seq {
            return Vec::new();
        }
        self.info = info;
        self.checking = false;
        vec![PaneEvent::InputChanged]
    }

    /// The list changed: URLs and data: URIs are described at once; local files are looked up
    /// on a blocking thread so the UI never waits on the disk.
    fn changed(&mut self, shared: Shared) -> Vec<PaneEvent> {
        self.selected = self.selected.min(self.items.len().saturating_sub(1));
        self.check_seq += 1;
        let mut needs_disk = false;
        self.info = self
            .items
            .iter()
            .map(|text| match ImageSource::classify(text) {
                ImageSource::Local(_) => {
                    needs_disk = true;
                    ImageInfo { tag: "checking…".into(), ..ImageInfo::default() }
                }
                other => describe_image(&other, shared.ctx.data_uri_threshold),
            })
            .collect();
        self.checking = needs_disk;
        let mut events = vec![PaneEvent::InputChanged];
        if needs_disk {
            events.push(PaneEvent::Run(Effect::CheckImages { seq: self.check_seq, items: self.items.clone() }));
        }
        events
    }

    fn add_lines<'a>(&mut self, lines: impl Iterator<Item = &'a str>, shared: Shared) -> Vec<PaneEvent> {
        let max = self.limit;
        let mut added = 0;
        let mut refused = 0;
        for line in lines.map(str::trim).filter(|l| !l.is_empty()) {
            // Terminals paste dragged files as quoted or escaped paths.
            let cleaned = line.trim_matches(|c| c == '\'' || c == '"').replace("\\ ", " ");
            if self.items.len() >= max {
                refused += 1;
                continue;
            }
            self.items.push(cleaned);
            added += 1;
        }
        if added > 0 {
            self.selected = self.items.len() - 1;
        }
        let mut events = self.changed(shared);
        if refused > 0 {
            events.push(Notice::error(self.refusal(refused)).into());
        }
        events
    }

    fn on_input_key(&mut self, key: &KeyEvent, shared: Shared) -> Vec<PaneEvent> {
        let Some(input) = self.input.as_mut() else { return Vec::new() };
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        match key.code {
            KeyCode::Enter => {
                let text = std::mem::take(input);
                self.input = None;
                return self.add_lines(text.lines(), shared);
            }
            KeyCode::Esc => self.input = None,
            KeyCode::Backspace => {
                input.pop();
            }
            KeyCode::Char('u') if ctrl => input.clear(),
            KeyCode::Char(c) if !ctrl => input.push(c),
            _ => {}
        }
        Vec::new()
    }

    fn on_action(&mut self, action: Action, shared: Shared) -> Option<Vec<PaneEvent>> {
        let last = self.items.len().saturating_sub(1);
        match action {
            Action::Add | Action::Confirm => {
                if self.items.len() >= self.limit {
                    let text = match self.limit {
                        0 => self.no_images_line(),
                        max => format!("this endpoint takes at most {max} image(s); remove one first (d)"),
                    };
                    return Some(vec![Notice::error(text).into()]);
                }
                self.input = Some(String::new());
            }
            Action::Delete if !self.items.is_empty() => {
                self.items.remove(self.selected);
                return Some(self.changed(shared));
            }
            Action::Up => self.selected = self.selected.saturating_sub(1),
            Action::Down => self.selected = (self.selected + 1).min(last),
            Action::MoveUp if self.selected > 0 => {
                self.items.swap(self.selected, self.selected - 1);
                self.selected -= 1;
                return Some(self.changed(shared));
            }
            Action::MoveDown if self.selected < last => {
                self.items.swap(self.selected, self.selected + 1);
                self.selected += 1;
                return Some(self.changed(shared));
            }
            Action::Delete | Action::MoveUp | Action::MoveDown => {}
            _ => return None,
        }
        Some(Vec::new())
    }
}

impl PaneBehaviour for ImagesPane {
    fn pane(&self) -> Pane {
        Pane::Images
    }

    fn is_editing_text(&self) -> bool {
        self.input.is_some()
    }

    fn on_key(&mut self, key: &KeyEvent, action: Option<Action>, shared: Shared) -> Option<Vec<PaneEvent>> {
        if self.input.is_some() {
            return Some(self.on_input_key(key, shared));
        }
        self.on_action(action?, shared)
    }

    fn on_paste(&mut self, text: &str, shared: Shared) -> Option<Vec<PaneEvent>> {
        self.input = None;
        Some(self.add_lines(text.lines(), shared))
    }

    fn hints(&self, shared: Shared) -> Vec<Hint> {
        if self.input.is_some() {
            return vec![
                Hint::fixed("Enter", "enter", Some(Action::Confirm), "add"),
                Hint::fixed("Esc", "esc", Some(Action::Close), "cancel").ranked(1),
            ];
        }
        let km = shared.keymap();
        // No "add" where the endpoint takes no more: the key would only say so.
        let room = self.items.len() < self.limit;
        let mut hints: Vec<Hint> =
            Hint::bound(km, Pane::Images, Action::Add, "add", false).filter(|_| room).into_iter().collect();
        if !self.items.is_empty() {
            hints.extend(Hint::bound(km, Pane::Images, Action::Delete, "remove", false));
        }
        if self.items.len() > 1 {
            hints.extend(Hint::bound(km, Pane::Images, Action::MoveUp, "reorder", false).map(|h| {
                let down = km.first_key(Pane::Images.scope(), Action::MoveDown, false);
                // "Shift-↑↓" when the defaults pair up; the keys as bound otherwise.
                let keys = match (h.keys.as_str(), down.map(|d| d.to_string()).as_deref()) {
                    ("Shift-Up", Some("Shift-Down")) => "Shift-↑↓".to_string(),
                    (up, Some(down)) => format!("{up}/{down}"),
                    (up, None) => up.to_string(),
                };
                Hint { keys, ..h }
            }));
        }
        hints
    }

    fn draw(&mut self, c: Canvas) {
        let title = format!("{}/{}", self.items.len(), self.limit);
        let block = pane_block(Pane::Images, c.focused, title, c.theme);
        let inner = block.inner(c.area);
        block.render(c.area, c.buf);
        let theme = c.theme;
        let errors = c.shared.errors;

        let selected_local = self.info.get(self.selected).and_then(|i| i.local_file.clone());
        // The newest job's upload, shown against the image it concerns.
        let uploading = c.shared.jobs.newest().and_then(|j| match j.phase {
            JobPhase::Uploading(i) => j.inputs.get(i).cloned(),
            _ => None,
        });
        // The thumbnail goes under the list when there is height to spare, else beside it.
        let list_rows = (self.items.len() as u16 * 2 + 3).max(4);
        let (list_area, thumb_area) = match selected_local {
            Some(_) if inner.height >= list_rows + 5 => {
                let [l, t] = Layout::vertical([Constraint::Length(list_rows), Constraint::Min(5)]).areas(inner);
                (l, Some(t))
            }
            Some(_) if inner.width >= 70 => {
                let [l, t] =
                    Layout::horizontal([Constraint::Min(40), Constraint::Length(inner.width / 3)]).areas(inner);
                (l, Some(t))
            }
            _ => (inner, None),
        };
        let mut lines = Vec::new();
        if self.limit == 0 {
            lines.push(Line::styled(clip(&self.no_images_line(), list_area.width as usize), theme.dim()));
            if !self.items.is_empty() {
                let text = "the images below are not sent: d removes one, or pick an image endpoint";
                lines.push(Line::styled(clip(text, list_area.width as usize), theme.error()));
            }
        } else if self.items.is_empty() && self.input.is_none() {
            lines.push(Line::styled("no images yet — press a to add a URL or a file path", theme.dim()));
            lines.push(Line::styled("(or paste paths/URLs here, one per line)", theme.dim()));
        }
        let width = list_area.width as usize;
        for (i, text) in self.items.iter().enumerate() {
            let source = ImageSource::classify(text);
            let err = errors.exact(Field::ImageUrls(Some(i)));
            let selected = i == self.selected && c.focused;
            let mut tag = self.info.get(i).map(|info| info.tag.clone()).unwrap_or_default();
            if uploading.as_deref() == Some(source.display().as_str()) {
                tag = "uploading…".into();
            }
            let name_w = width.saturating_sub(tag.len() + 5);
            let mut spans = vec![
                Span::styled(format!("{} ", i + 1), theme.dim()),
                Span::styled(
                    clip(&one_line(&source.display()), name_w),
                    if selected { theme.selected() } else { Default::default() },
                ),
                Span::raw(" "),
                Span::styled(tag, if err.is_some() { theme.error() } else { theme.dim() }),
            ];
            if err.is_some() {
                spans.push(Span::styled(" ✗", theme.error()));
            }
            lines.push(Line::from(spans));
            if let Some(e) = err {
                lines.push(Line::styled(clip(&format!("  {}", e.message), width), theme.error()));
            }
        }
        if let Some(e) = errors.exact(Field::ImageUrls(None)) {
            lines.push(Line::styled(clip(&format!("✗ {}", e.message), width), theme.error()));
        }
        if let Some(input) = &self.input {
            lines.push(Line::from(vec![
                Span::styled("add: ", theme.key()),
                Span::raw(clip(&one_line(input), width.saturating_sub(7))),
                Span::styled("█", theme.key()),
            ]));
            lines.push(Line::styled("Enter adds · Esc cancels", theme.dim()));
        }
        Paragraph::new(lines).render(list_area, c.buf);

        if let (Some(t), Some(path)) = (thumb_area, selected_local) {
            c.images.draw_file(&path, t, c.buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::panes::harness::Harness;

    fn with(h: &Harness, items: &[&str]) -> ImagesPane {
        let mut p = ImagesPane::default();
        let items: Vec<String> = items.iter().map(|s| s.to_string()).collect();
        p.set_items(&items, h.shared());
        p
    }

    #[test]
    fn the_add_line_takes_text_then_adds_or_cancels() {
        let h = Harness::new();
        let mut p = ImagesPane::default();
        h.press(&mut p, "a");
        assert!(p.is_adding() && p.is_editing_text());
        h.type_text(&mut p, "https://x/a.png");
        assert!(p.items().is_empty(), "letters went into the line, not the keymap");
        h.press(&mut p, "enter");
        assert_eq!(p.items(), ["https://x/a.png"]);
        h.press(&mut p, "a");
        h.type_text(&mut p, "junk");
        h.press(&mut p, "esc");
        assert!(!p.is_adding());
        assert_eq!(p.items().len(), 1, "Esc cancels the input");
    }

    #[test]
    fn pasting_adds_one_image_per_line_up_to_the_limit() {
        let h = Harness::new();
        let mut p = ImagesPane::default();
        let events = p.on_paste("a.png\r\n'b c.png'\n\nhttps://x/y.png\nd.png\ne.png\n", h.shared()).unwrap();
        assert_eq!(p.items(), ["a.png", "b c.png", "https://x/y.png", "d.png"]);
        assert!(
            events.iter().any(|e| matches!(e, PaneEvent::Notify(n) if n.is_error() && n.text.contains("at most 4")))
        );
        assert!(events.iter().any(|e| matches!(e, PaneEvent::Run(Effect::CheckImages { .. }))), "files are looked at");
        let full = h.press(&mut p, "a").unwrap();
        assert!(!p.is_adding() && matches!(full.as_slice(), [PaneEvent::Notify(n)] if n.is_error()));
    }

    #[test]
    fn the_limit_follows_the_endpoint_and_text_to_image_says_why_it_takes_none() {
        let h = Harness::new();
        let catalog = crate::model::Catalog::bundled();
        let mut p = ImagesPane::default();
        p.follow_endpoint(catalog.get("fal-ai/flux-pro/kontext/max").unwrap());
        p.on_paste("https://x/1.png\nhttps://x/2.png\n", h.shared());
        assert_eq!(p.items(), ["https://x/1.png"], "[max] takes one image");
        assert!(!p.hints(h.shared()).iter().any(|x| x.label == "add"), "no add hint when full");
        p.follow_endpoint(catalog.get("fal-ai/flux-pro/kontext/text-to-image").unwrap());
        let screen = h.render(&mut p, 100, 8);
        assert!(screen.contains("2 Images 1/0"), "{screen}");
        assert!(screen.contains("no input image: [pro] text to image makes one from the prompt"), "{screen}");
        assert!(screen.contains("the images below are not sent"), "{screen}");
        let events = h.press(&mut p, "a").unwrap();
        assert!(matches!(events.as_slice(), [PaneEvent::Notify(n)] if n.text.contains("no input image")));
    }

    #[test]
    fn a_local_file_is_described_with_its_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.png");
        image::RgbImage::from_pixel(40, 30, image::Rgb([1, 2, 3])).save(&path).unwrap();
        let info = describe_image(&ImageSource::Local(path), 256 * 1024);
        assert_eq!((info.error, info.size), (None, Some((40, 30))));
        let url = describe_image(&ImageSource::classify("https://x/1.png"), 0);
        assert_eq!(url.size, None, "a URL is not fetched to learn its size");
    }

    #[test]
    fn delete_and_reorder_keep_the_moved_image_selected() {
        let h = Harness::new();
        let mut p = with(&h, &["https://x/1.png", "https://x/2.png", "https://x/3.png"]);
        h.press(&mut p, "down");
        h.press(&mut p, "shift-down");
        assert_eq!(p.items(), ["https://x/1.png", "https://x/3.png", "https://x/2.png"]);
        assert_eq!(p.selected(), 2);
        h.press(&mut p, "d");
        assert_eq!(p.items(), ["https://x/1.png", "https://x/3.png"]);
        assert_eq!(p.selected(), 1);
        assert!(h.press(&mut p, "ctrl-q").is_none(), "not the pane's: the app quits");
    }

    #[test]
    fn an_answer_for_an_older_list_is_dropped() {
        let h = Harness::new();
        let mut p = with(&h, &["/no/such/a.png"]);
        assert!(p.is_checking());
        let stale = p.check_seq;
        h.press(&mut p, "d");
        assert!(p.on_checked(stale, vec![ImageInfo::default()]).is_empty());
        assert!(p.info().is_empty());
    }

    #[test]
    fn draws_each_image_with_its_tag_and_the_add_line() {
        let h = Harness::new();
        let mut p = with(&h, &["https://x/1.png"]);
        h.press(&mut p, "a");
        h.type_text(&mut p, "b.png");
        let screen = h.render(&mut p, 60, 8);
        assert!(screen.contains("2 Images 1/4"), "{screen}");
        assert!(screen.contains("1 https://x/1.png url"), "{screen}");
        assert!(screen.contains("add: b.png█"), "{screen}");
    }
}
