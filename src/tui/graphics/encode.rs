//! Off-UI-task work: decode, downscale, resize to the cell grid and encode with ratatui-image's protocols.

use std::io::Cursor;
use std::path::Path;
use std::sync::Arc;

use image::{DynamicImage, ImageReader, Limits};
use ratatui::layout::Size;
use ratatui_image::protocol::{Protocol, halfblocks::Halfblocks, iterm2::Iterm2, kitty::Kitty, sixel::Sixel};
use ratatui_image::{FilterType, FontSize, Resize};

use super::replies::tmux_wrap;
use super::{Graphics, GraphicsMode};

/// The resize used for every thumbnail: fit inside the area, keep the aspect ratio, smooth filter.
pub(super) fn resize_mode() -> Resize {
    Resize::Fit(Some(FilterType::Triangle))
}

/// Largest source image we agree to decode (pixels per side); protects memory against hostile files.
const MAX_SIDE: u32 = 16_384;

/// A decoded image, already downscaled to about twice the largest area it was requested for.
#[derive(Debug)]
pub(super) struct Decoded {
    pub image: DynamicImage,
    /// Size of the original file's image.
    pub original: (u32, u32),
}

impl Decoded {
    /// Whether this (possibly downscaled) copy has enough pixels for `need` (pixels).
    pub fn covers(&self, need: (u32, u32)) -> bool {
        let (ow, oh) = (self.original.0.max(1) as f64, self.original.1.max(1) as f64);
        let scale = (need.0 as f64 / ow).min(need.1 as f64 / oh).min(1.0);
        self.image.width() as f64 + 1.0 >= ow * scale
    }

    pub fn bytes(&self) -> usize {
        self.image.as_bytes().len()
    }
}

/// What a finished job produced, ready for the UI task.
pub(super) enum Built {
    /// Render as is (halfblocks, kitty in or out of tmux).
    Proto(Protocol),
    /// Sixel or iTerm2: an immediate-mode sequence (starting with ratatui-image's erase of the cells it covers).
    /// It is written into the image's first cell by a carrier built per position (see `carrier`), because
    /// inside tmux it must be positioned absolutely, and because a damaged image is re-sent by changing it.
    Sequence { plain: String, size: Size },
    /// `none` mode: only the size is known.
    Text,
}

impl Built {
    pub fn size(&self) -> Option<Size> {
        match self {
            Built::Proto(p) => Some(p.size()),
            Built::Sequence { size, .. } => Some(*size),
            Built::Text => None,
        }
    }
}

pub(super) enum Input {
    File(std::path::PathBuf),
    Bytes(bytes::Bytes),
}

fn reader_limits() -> Limits {
    let mut l = Limits::default();
    l.max_image_width = Some(MAX_SIDE);
    l.max_image_height = Some(MAX_SIDE);
    l
}

fn read_bytes(input: &Input) -> Result<bytes::Bytes, String> {
    match input {
        Input::File(p) => std::fs::read(p).map(bytes::Bytes::from).map_err(|e| io_reason(p, &e)),
        Input::Bytes(b) => Ok(b.clone()),
    }
}

fn io_reason(p: &Path, e: &std::io::Error) -> String {
    let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| p.display().to_string());
    match e.kind() {
        std::io::ErrorKind::NotFound => format!("{name} not found"),
        std::io::ErrorKind::PermissionDenied => format!("{name}: permission denied"),
        _ => format!("{name}: {e}"),
    }
}

fn image_reason(e: &image::ImageError) -> String {
    match e {
        image::ImageError::Unsupported(_) => "unsupported image format".into(),
        image::ImageError::Limits(_) => "image too large".into(),
        image::ImageError::Decoding(_) => "corrupt or truncated image".into(),
        image::ImageError::IoError(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            "corrupt or truncated image".into()
        }
        other => other.to_string(),
    }
}

fn reader(bytes: &bytes::Bytes) -> Result<ImageReader<Cursor<&[u8]>>, String> {
    let mut r = ImageReader::new(Cursor::new(&bytes[..])).with_guessed_format().map_err(|e| e.to_string())?;
    if r.format().is_none() {
        return Err("not an image (unknown format)".into());
    }
    r.limits(reader_limits());
    Ok(r)
}

/// Only the image's size (header), for `none` mode.
pub(super) fn dimensions(input: &Input) -> Result<(u32, u32), String> {
    let bytes = read_bytes(input)?;
    reader(&bytes)?.into_dimensions().map_err(|e| image_reason(&e))
}

/// Decode and downscale so that the copy kept in memory is at most ~2x `need` pixels per side.
pub(super) fn decode(input: &Input, need: (u32, u32)) -> Result<Decoded, String> {
    let bytes = read_bytes(input)?;
    let img = reader(&bytes)?.decode().map_err(|e| image_reason(&e))?;
    let original = (img.width(), img.height());
    let cap = (need.0.saturating_mul(2).max(64), need.1.saturating_mul(2).max(64));
    let image =
        if img.width() > cap.0 || img.height() > cap.1 { img.resize(cap.0, cap.1, FilterType::Triangle) } else { img };
    Ok(Decoded { image, original })
}

/// Pixels needed to fill `area` cells at the graphics' font size.
pub(super) fn pixels_for(graphics: &Graphics, area: Size) -> (u32, u32) {
    let (fw, fh) = graphics.font_size();
    (u32::from(area.width) * u32::from(fw), u32::from(area.height) * u32::from(fh))
}

/// Resize `decoded` into `area` (cells) and encode it for the graphics' protocol.
pub(super) fn encode(graphics: &Graphics, decoded: &Arc<Decoded>, area: Size) -> Result<Built, String> {
    let (fw, fh) = graphics.font_size();
    let font = FontSize::new(fw, fh);
    let halfblocks = matches!(graphics.mode(), GraphicsMode::Halfblocks | GraphicsMode::Auto);
    // Halfblocks are cell-resolution anyway: let small images grow to fill the pane instead of a tiny blob.
    let resize = if halfblocks { Resize::Scale(Some(FilterType::Triangle)) } else { resize_mode() };
    let img = &decoded.image;
    let size = resize.size_for(img, font, area);
    if size.width == 0 || size.height == 0 {
        return Err("area too small".into());
    }
    let err = |e: ratatui_image::errors::Errors| e.to_string();
    if halfblocks {
        // Halfblocks resample to the cell grid themselves: give them the fitted image without the transparent
        // padding `Resize::resize` adds up to the next cell (it would show as a black bar).
        let (px_w, px_h) = pixels_for(graphics, size);
        let fitted = img.resize(px_w, px_h, FilterType::Triangle);
        return Ok(Built::Proto(Protocol::Halfblocks(Halfblocks::new(fitted, size).map_err(err)?)));
    }
    let resized = resize.resize(img, font, size, None);
    Ok(match graphics.mode() {
        GraphicsMode::Halfblocks | GraphicsMode::Auto => unreachable!("handled above"),
        GraphicsMode::Kitty => {
            // Only direct transmission (t=d), which is the only medium that works over SSH; kitty's unicode
            // placeholders make the placement tmux-safe.
            let id = rand::random::<u32>() | 1;
            let in_tmux = graphics.tmux().is_some();
            let k = Kitty::new(resized, size, id, in_tmux, graphics.kitty_compression()).map_err(err)?;
            Built::Proto(Protocol::Kitty(k))
        }
        GraphicsMode::Sixel => Built::Sequence { plain: Sixel::new(resized, size, false).map_err(err)?.data, size },
        GraphicsMode::Iterm2 => Built::Sequence { plain: Iterm2::new(resized, size, false).map_err(err)?.data, size },
        GraphicsMode::None => Built::Text,
    })
}

/// Where and how a sequence is written: its first cell, the tmux pane's offset in the outer terminal (`None`
/// outside tmux), and which of two equivalent forms to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Placement {
    pub pos: (u16, u16),
    pub tmux_offset: Option<(u16, u16)>,
    /// The two forms draw the same thing; switching form changes the first cell, so ratatui's diff sends the
    /// image again (after an overlay drew over part of it, for example).
    pub alternate: bool,
}

/// A `Protocol` that writes `plain` at `at`. ratatui-image's sixel renderer puts the sequence into the first cell
/// and marks the rest of the area skipped, which is what iTerm2 needs too.
///
/// Inside tmux the image travels in one passthrough, positioned absolutely (tmux does not move the outer cursor
/// for passthrough data), and the cells under it are first erased *in tmux's own grid*: tmux redraws from that
/// grid (window switch, another client), and without the erase whatever was there before (a "loading…") would
/// come back instead of the image.
pub(super) fn carrier(plain: &str, size: Size, at: Placement) -> Protocol {
    let mut data = String::with_capacity(plain.len() + plain.len() / 64 + 64);
    if at.alternate {
        // Save and restore the cursor: does nothing, but makes the first cell differ from the other form.
        data.push_str("\x1b7\x1b8");
    }
    match at.tmux_offset {
        Some(offset) => {
            erase_cells(&mut data, size);
            data.push_str(&place_in_tmux(plain, at.pos, offset));
        }
        None => data.push_str(plain),
    }
    Protocol::Sixel(Sixel { data, size, is_tmux: at.tmux_offset.is_some() })
}

/// The data a carrier writes into the first cell.
pub(super) fn carried(p: &Protocol) -> Option<&str> {
    match p {
        Protocol::Sixel(s) => Some(&s.data),
        _ => None,
    }
}

/// Erase `size` cells from the cursor on, row by row, and come back (the cursor is at the image's first cell).
fn erase_cells(data: &mut String, size: Size) {
    use std::fmt::Write as _;
    for row in 0..size.height {
        if row > 0 {
            data.push_str("\x1b[1B");
        }
        let _ = write!(data, "\x1b[{}X", size.width);
    }
    if size.height > 1 {
        let _ = write!(data, "\x1b[{}A", size.height - 1);
    }
}

/// The sequence for a passthrough image whose top-left cell is `(x, y)` in our pane: save cursor, move to the
/// absolute outer-terminal position, draw, restore cursor; all inside one tmux passthrough.
pub(super) fn place_in_tmux(plain: &str, (x, y): (u16, u16), (ox, oy): (u16, u16)) -> String {
    let row = u32::from(y) + u32::from(oy) + 1;
    let col = u32::from(x) + u32::from(ox) + 1;
    tmux_wrap(&format!("\x1b7\x1b[{row};{col}H{plain}\x1b8"))
}
