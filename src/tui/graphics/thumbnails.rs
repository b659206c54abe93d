//! The thumbnail cache: requests spawn decode+encode work off the UI task; `render` never blocks.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use ratatui::buffer::{Buffer, CellDiffOption};
use ratatui::layout::{Alignment, Rect, Size};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Clear, Paragraph, Widget, Wrap};
use ratatui_image::Image;
use ratatui_image::protocol::Protocol;
use tokio::sync::mpsc::UnboundedSender;

use super::encode::{self, Built, Decoded, Input, Placement};
use super::{Graphics, GraphicsMode};

/// What to show: a file on disk, or bytes already in memory (e.g. a download) identified by `key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ThumbSource {
    File(PathBuf),
    Bytes { key: String, bytes: bytes::Bytes },
}

impl ThumbSource {
    /// Identity of the content: a file's path plus its modification time and length (so an edited file is
    /// shown anew), or the caller's key for bytes.
    fn id(&self) -> SourceId {
        match self {
            ThumbSource::File(p) => {
                let stamp = std::fs::metadata(p)
                    .ok()
                    .map(|m| {
                        let t = m.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
                        format!("{}:{}", t.map(|d| d.as_nanos()).unwrap_or(0), m.len())
                    })
                    .unwrap_or_else(|| "missing".into());
                SourceId(format!("f:{}:{stamp}", p.display()).into())
            }
            ThumbSource::Bytes { key, .. } => SourceId(format!("b:{key}").into()),
        }
    }

    fn input(&self) -> Input {
        match self {
            ThumbSource::File(p) => Input::File(p.clone()),
            ThumbSource::Bytes { bytes, .. } => Input::Bytes(bytes.clone()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SourceId(Arc<str>);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    source: SourceId,
    size: (u16, u16),
}

/// Sent by a worker when a thumbnail is ready (or failed). Pass it back with [`Thumbnails::on_ready`].
pub struct ThumbnailReady {
    key: Key,
    generation: u64,
    result: Result<Done, String>,
}

struct Done {
    built: Built,
    /// The original image's size in pixels.
    dims: (u32, u32),
    /// The decoded (downscaled) image, to re-encode at other sizes without decoding again.
    decoded: Option<Arc<Decoded>>,
}

impl std::fmt::Debug for ThumbnailReady {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThumbnailReady")
            .field("source", &self.key.source.0)
            .field("size", &self.key.size)
            .field("ok", &self.result.is_ok())
            .finish()
    }
}

impl ThumbnailReady {
    /// Whether this result is for `source` (any size).
    pub fn is_for(&self, source: &ThumbSource) -> bool {
        self.key.source == source.id()
    }

    /// The failure reason, if the thumbnail could not be made.
    pub fn error(&self) -> Option<&str> {
        self.result.as_ref().err().map(String::as_str)
    }
}

enum Slot {
    Pending,
    Ready(Box<ReadyEntry>),
    Failed(String),
}

struct ReadyEntry {
    built: Built,
    dims: (u32, u32),
    /// For sixel / iTerm2: the carriers for the places the image was last drawn (the same image can be on
    /// screen twice, e.g. as an input in the Images and the Results pane).
    placed: Vec<Placed>,
    /// Kitty: the terminal has the image (it was transmitted in a frame that reached the screen).
    transmitted: bool,
    bytes: usize,
}

/// How many places one sequence image keeps a carrier for.
const MAX_PLACES: usize = 4;

/// A sequence image drawn at one place, and whether something has drawn over it since it was last sent.
struct Placed {
    at: Placement,
    proto: Protocol,
    damaged: bool,
}

/// A sequence image drawn in the current frame, checked by [`Thumbnails::end_frame`].
struct Drawn {
    key: Key,
    pos: (u16, u16),
    size: Size,
}

/// A kitty image whose transmission went into this frame's first cell; it counts as sent once the frame is
/// flushed with that cell intact (an overlay over the first cell would have kept it from the terminal).
struct KittySent {
    key: Key,
    pos: (u16, u16),
}

struct Entry {
    slot: Slot,
    last_used: u64,
}

/// Counters, for tests, benches and a debug overlay.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ThumbStats {
    /// Jobs spawned (decode and/or encode).
    pub spawned: u64,
    /// `request`s answered from the cache (ready or already pending).
    pub hits: u64,
    pub ready: u64,
    pub failed: u64,
    /// Jobs that reused an already decoded image.
    pub reused_decodes: u64,
    pub entries: usize,
    pub decoded: usize,
    /// Approximate bytes held (encoded sequences + decoded images).
    pub bytes: usize,
}

/// Default bounds: at most this many encoded thumbnails (an 8×8 sweep grid, the Images pane's
/// and a full-screen view at once, so none of them pushes the others out every frame)…
pub const MAX_ENTRIES: usize = 160;
/// …and decoded images…
pub const MAX_DECODED: usize = 16;
/// …and about this much memory for both together.
pub const MAX_BYTES: usize = 96 * 1024 * 1024;

pub struct Thumbnails {
    graphics: Graphics,
    notify: UnboundedSender<ThumbnailReady>,
    runtime: Option<tokio::runtime::Handle>,
    entries: HashMap<Key, Entry>,
    decoded: HashMap<SourceId, (Arc<Decoded>, u64)>,
    tick: u64,
    generation: u64,
    stats: ThumbStats,
    max_entries: usize,
    max_decoded: usize,
    max_bytes: usize,
    /// The whole screen, as last seen by `render` (to keep sixels off the last row).
    screen: Option<Rect>,
    /// Sequence images drawn since the last `end_frame`.
    drawn: Vec<Drawn>,
    /// Kitty transmissions written since the last `end_frame`.
    transmitting: Vec<KittySent>,
}

impl Thumbnails {
    pub fn new(graphics: Graphics, notify: UnboundedSender<ThumbnailReady>) -> Thumbnails {
        Thumbnails {
            graphics,
            notify,
            runtime: tokio::runtime::Handle::try_current().ok(),
            entries: HashMap::new(),
            decoded: HashMap::new(),
            tick: 0,
            generation: 0,
            stats: ThumbStats::default(),
            max_entries: MAX_ENTRIES,
            max_decoded: MAX_DECODED,
            max_bytes: MAX_BYTES,
            screen: None,
            drawn: Vec::new(),
            transmitting: Vec::new(),
        }
    }

    /// Change the cache bounds (entries, decoded images, bytes).
    pub fn with_limits(mut self, max_entries: usize, max_decoded: usize, max_bytes: usize) -> Thumbnails {
        self.max_entries = max_entries.max(1);
        self.max_decoded = max_decoded.max(1);
        self.max_bytes = max_bytes;
        self
    }

    pub fn graphics(&self) -> &Graphics {
        &self.graphics
    }

    /// Switch protocol at runtime (e.g. a "cycle graphics" key). Drops the cache.
    pub fn set_graphics(&mut self, graphics: Graphics) {
        self.graphics = graphics;
        self.clear_cache();
    }

    pub fn stats(&self) -> ThumbStats {
        let mut s = self.stats;
        s.entries = self.entries.len();
        s.decoded = self.decoded.len();
        s.bytes = self.bytes();
        s
    }

    /// Ask for `source` to be shown in `area` (cells). Cheap when cached or already pending; otherwise spawns
    /// the work and a [`ThumbnailReady`] arrives later on the channel given to [`Thumbnails::new`].
    pub fn request(&mut self, source: &ThumbSource, area: Rect) {
        let area = self.image_area(area);
        self.request_key(source, Key { source: source.id(), size: (area.width, area.height) });
    }

    /// The part of `area` an image may use. A sixel that reaches the terminal's last row makes the terminal
    /// scroll (seen in xterm; ratatui-image issue #57), so sixel images stop one row short of it.
    fn image_area(&self, area: Rect) -> Rect {
        match self.screen {
            Some(screen) if self.graphics.mode() == GraphicsMode::Sixel && area.bottom() >= screen.bottom() => {
                let height = screen.bottom().saturating_sub(1).saturating_sub(area.y).min(area.height);
                if height == 0 { area } else { Rect { height, ..area } }
            }
            _ => area,
        }
    }

    fn request_key(&mut self, source: &ThumbSource, key: Key) {
        if key.size.0 == 0 || key.size.1 == 0 {
            return;
        }
        self.tick += 1;
        if let Some(e) = self.entries.get_mut(&key) {
            e.last_used = self.tick;
            self.stats.hits += 1;
            return;
        }
        let decoded = self.decoded.get_mut(&key.source).map(|(d, used)| {
            *used = self.tick;
            d.clone()
        });
        let graphics = self.graphics.clone();
        let size = Size::new(key.size.0, key.size.1);
        let need = encode::pixels_for(&graphics, size);
        let decoded = decoded.filter(|d| d.covers(need));
        if decoded.is_some() {
            self.stats.reused_decodes += 1;
        }
        let input = source.input();
        let notify = self.notify.clone();
        let generation = self.generation;
        let job_key = key.clone();
        let job = move || {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                build(&graphics, &input, decoded, size, need)
            }))
            .unwrap_or_else(|_| Err("internal error while decoding".into()));
            let _ = notify.send(ThumbnailReady { key: job_key, generation, result });
        };
        match &self.runtime {
            Some(rt) => {
                rt.spawn_blocking(job);
            }
            None => {
                std::thread::spawn(job);
            }
        }
        self.stats.spawned += 1;
        self.entries.insert(key, Entry { slot: Slot::Pending, last_used: self.tick });
    }

    /// Store a finished job. Results from before the last `clear_cache` are dropped.
    pub fn on_ready(&mut self, ready: ThumbnailReady) {
        if ready.generation != self.generation {
            return;
        }
        let Some(entry) = self.entries.get_mut(&ready.key) else { return };
        match ready.result {
            Ok(done) => {
                self.stats.ready += 1;
                if let Some(d) = done.decoded {
                    self.decoded.insert(ready.key.source.clone(), (d, self.tick));
                }
                let bytes = approx_bytes(&done.built);
                entry.slot = Slot::Ready(Box::new(ReadyEntry {
                    built: done.built,
                    dims: done.dims,
                    placed: Vec::new(),
                    transmitted: false,
                    bytes,
                }));
            }
            Err(reason) => {
                self.stats.failed += 1;
                entry.slot = Slot::Failed(reason);
            }
        }
        self.evict();
    }

    /// Draw `source` into `area`: the image when ready, otherwise a placeholder ("loading…",
    /// "no preview: <reason>", or in `none` mode "image W×H"). Requests the thumbnail if needed. Never blocks.
    pub fn render(&mut self, source: &ThumbSource, area: Rect, buf: &mut Buffer) {
        let area = area.intersection(buf.area);
        if area.width == 0 || area.height == 0 {
            return;
        }
        self.screen = Some(buf.area);
        let full = area;
        let area = self.image_area(area);
        let source_id = source.id();
        let key = Key { source: source_id.clone(), size: (area.width, area.height) };
        self.request_key(source, key.clone());
        let tmux_offset = self.graphics.tmux().map(|t| t.pane_offset);
        let none_mode = self.graphics.mode() == GraphicsMode::None;

        // While a new size is being encoded, keep showing an older encoding that fits (no flash on resize).
        let key = match self.entries.get(&key).map(|e| &e.slot) {
            Some(Slot::Ready(_) | Slot::Failed(_)) => key,
            _ => self.stale_fallback(&source_id, area).unwrap_or(key),
        };
        Clear.render(full, buf);
        let Some(entry) = self.entries.get_mut(&key) else { return };
        match &mut entry.slot {
            Slot::Pending => placeholder(full, buf, "loading…", Style::new().add_modifier(Modifier::DIM)),
            Slot::Failed(reason) => {
                placeholder(area, buf, &format!("no preview: {reason}"), Style::new().fg(Color::Red))
            }
            Slot::Ready(r) if none_mode || matches!(r.built, Built::Text) => {
                placeholder(full, buf, &format!("image {}×{}", r.dims.0, r.dims.1), Style::new())
            }
            Slot::Ready(r) => {
                let Some(size) = r.built.size() else { return };
                let rect = centered(area, size);
                match &r.built {
                    Built::Proto(p) => Image::new(p).render(rect, buf),
                    Built::Kitty { cells, transmit } => {
                        copy_cells(cells, rect, buf);
                        if !r.transmitted {
                            let first = &mut buf[(rect.x, rect.y)];
                            let symbol = format!("{transmit}{}", first.symbol());
                            first.set_symbol(&symbol);
                            self.transmitting.push(KittySent { key, pos: (rect.x, rect.y) });
                        }
                    }
                    Built::Sequence { plain, size } => {
                        let pos = (rect.x, rect.y);
                        let i = match r.placed.iter().position(|p| p.at.pos == pos) {
                            Some(i) if r.placed[i].at.tmux_offset == tmux_offset => i,
                            found => {
                                let at = Placement { pos, tmux_offset, alternate: false };
                                let placed = Placed { at, proto: encode::carrier(plain, *size, at), damaged: false };
                                if let Some(i) = found {
                                    r.placed[i] = placed;
                                } else {
                                    if r.placed.len() >= MAX_PLACES {
                                        r.placed.remove(0);
                                    }
                                    r.placed.push(placed);
                                }
                                found.unwrap_or(r.placed.len() - 1)
                            }
                        };
                        Image::new(&r.placed[i].proto).render(rect, buf);
                        self.drawn.push(Drawn { key, pos, size: *size });
                    }
                    Built::Text => {}
                }
            }
        }
    }

    /// Call once per frame after everything (overlays included) is drawn into `buf`, before it is flushed.
    ///
    /// A sixel or iTerm2 image lives in its first cell; the other cells are skipped by ratatui's diff. When
    /// something draws over part of it (the help overlay), the terminal shows that text over the pixels, and once
    /// it is gone ratatui would send nothing: the image's cells did not change. So an image found covered is
    /// remembered as damaged, and the first frame that shows it whole again switches it to its other, equivalent
    /// form: the first cell differs, and the image is sent again over the leftovers.
    pub fn end_frame(&mut self, buf: &mut Buffer) {
        for k in std::mem::take(&mut self.transmitting) {
            if let Some(Entry { slot: Slot::Ready(r), .. }) = self.entries.get_mut(&k.key)
                && let Built::Kitty { transmit, .. } = &r.built
            {
                r.transmitted |= buf.cell(k.pos).is_some_and(|c| c.symbol().starts_with(transmit.as_str()));
            }
        }
        for d in std::mem::take(&mut self.drawn) {
            let Some(Entry { slot: Slot::Ready(r), .. }) = self.entries.get_mut(&d.key) else { continue };
            let Built::Sequence { plain, size } = &r.built else { continue };
            let Some(placed) = r.placed.iter_mut().find(|p| p.at.pos == d.pos) else { continue };
            let area = Rect::new(d.pos.0, d.pos.1, d.size.width, d.size.height).intersection(buf.area);
            let first = encode::carried(&placed.proto).unwrap_or_default();
            let whole = buf.cell(d.pos).is_some_and(|c| c.symbol() == first)
                && area.positions().skip(1).all(|p| buf[p].diff_option == CellDiffOption::Skip);
            if !whole {
                placed.damaged = true;
            } else if placed.damaged {
                placed.damaged = false;
                placed.at.alternate = !placed.at.alternate;
                placed.proto = encode::carrier(plain, *size, placed.at);
                buf[d.pos].set_symbol(encode::carried(&placed.proto).unwrap_or_default());
            }
        }
    }

    /// Ask for every image to be sent again with the next frame, as the screen is being repainted in full (focus
    /// came back, Ctrl-L): re-reads the tmux pane position, keeps every encoding.
    pub fn repaint(&mut self) {
        self.graphics.refresh_tmux_geometry();
    }

    fn stale_fallback(&self, source: &SourceId, area: Rect) -> Option<Key> {
        self.entries
            .iter()
            .filter(|(k, e)| {
                &k.source == source
                    && matches!(&e.slot, Slot::Ready(r)
                        if r.built.size().is_none_or(|s| s.width <= area.width && s.height <= area.height))
            })
            .max_by_key(|(k, _)| u32::from(k.size.0) * u32::from(k.size.1))
            .map(|(k, _)| k.clone())
    }

    /// Forget everything (e.g. after a resize or returning from `$EDITOR`, together with `terminal.clear()`),
    /// and re-read the tmux pane position. Results of jobs still running are ignored when they arrive.
    pub fn clear_cache(&mut self) {
        self.entries.clear();
        self.drawn.clear();
        self.transmitting.clear();
        self.decoded.clear();
        self.generation += 1;
        self.graphics.refresh_tmux_geometry();
    }

    fn bytes(&self) -> usize {
        let enc: usize = self.entries.values().map(|e| if let Slot::Ready(r) = &e.slot { r.bytes } else { 0 }).sum();
        enc + self.decoded.values().map(|(d, _)| d.bytes()).sum::<usize>()
    }

    fn evict(&mut self) {
        while self.decoded.len() > self.max_decoded
            || (self.bytes() > self.max_bytes && !self.decoded.is_empty() && self.decoded.len() > 1)
        {
            let Some(oldest) = self.decoded.iter().min_by_key(|(_, (_, used))| *used).map(|(k, _)| k.clone()) else {
                break;
            };
            self.decoded.remove(&oldest);
        }
        loop {
            let done = self.entries.iter().filter(|(_, e)| !matches!(e.slot, Slot::Pending));
            let count = self.entries.len();
            if count <= self.max_entries && self.bytes() <= self.max_bytes {
                break;
            }
            let Some(oldest) = done.min_by_key(|(_, e)| e.last_used).map(|(k, _)| k.clone()) else { break };
            if count <= 1 {
                break;
            }
            self.entries.remove(&oldest);
        }
    }
}

fn build(
    graphics: &Graphics,
    input: &Input,
    decoded: Option<Arc<Decoded>>,
    size: Size,
    need: (u32, u32),
) -> Result<Done, String> {
    if graphics.mode() == GraphicsMode::None {
        let dims = encode::dimensions(input)?;
        return Ok(Done { built: Built::Text, dims, decoded: None });
    }
    let (decoded, fresh) = match decoded {
        Some(d) => (d, false),
        None => (Arc::new(encode::decode(input, need)?), true),
    };
    let built = encode::encode(graphics, &decoded, size)?;
    let dims = decoded.original;
    Ok(Done { built, dims, decoded: fresh.then_some(decoded) })
}

fn approx_bytes(built: &Built) -> usize {
    match built {
        Built::Sequence { plain, .. } => plain.len() * 2,
        Built::Text => 64,
        Built::Kitty { cells, transmit } => transmit.len() + cells.content.len() * 48,
        Built::Proto(p) => usize::from(p.size().width) * usize::from(p.size().height) * 32,
    }
}

/// Kitty's placeholder cells, drawn at `rect` (clipped to it).
fn copy_cells(cells: &Buffer, rect: Rect, buf: &mut Buffer) {
    for p in cells.area.positions() {
        let (x, y) = (rect.x + p.x, rect.y + p.y);
        if p.x < rect.width
            && p.y < rect.height
            && let Some(cell) = buf.cell_mut((x, y))
        {
            *cell = cells[p].clone();
        }
    }
}

fn centered(area: Rect, size: Size) -> Rect {
    let w = size.width.min(area.width);
    let h = size.height.min(area.height);
    Rect::new(area.x + (area.width - w) / 2, area.y + (area.height - h) / 2, w, h)
}

fn placeholder(area: Rect, buf: &mut Buffer, text: &str, style: Style) {
    let lines = if area.height >= 3 { area.height / 2 } else { 0 };
    let text_area = Rect::new(area.x, area.y + lines.saturating_sub(1).min(area.height - 1), area.width, area.height);
    let text_area = text_area.intersection(area);
    Paragraph::new(Line::from(text.to_string()))
        .style(style.add_modifier(Modifier::ITALIC))
        .alignment(Alignment::Center)
        .wrap(Wrap { trim: true })
        .render(text_area, buf);
}
