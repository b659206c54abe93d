//! Off-UI-task work: decode, downscale, resize to the cell grid and encode with ratatui-image's protocols.

use std::io::Cursor;
use std::path::Path;
use std::sync::Arc;

use image::{DynamicImage, ImageReader, Limits};
use ratatui::buffer::Buffer;
use ratatui::layout::{Position, Rect, Size};
use ratatui::style::Color;
use ratatui::widgets::Widget as _;
use ratatui_image::Image;
use ratatui_image::protocol::{Protocol, halfblocks::Halfblocks, kitty::Kitty, sixel::Sixel};
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
    /// Render as is (halfblocks).
    Proto(Protocol),
    /// Kitty: the image travels once as PNG (`f=100`, the smallest form kitty accepts: ratatui-image sends raw
    /// RGBA, 767 KB for a 200x50-cell result, or zlib of it); it is shown by unicode placeholder cells, which
    /// ratatui-image draws and which are ordinary text for ratatui's diff and for tmux.
    Kitty { cells: Buffer, transmit: String },
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
            Built::Kitty { cells, .. } => Some(cells.area.as_size()),
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
            let in_tmux = graphics.tmux().is_some();
            // The id travels as the placeholders' foreground colour. tmux turns 24-bit colours into its
            // 256-colour palette unless the outer terminal advertises RGB (TERM=xterm-256color without `Tc`), and
            // the image vanishes; so inside tmux the id is a palette index (1-255) plus a random top byte (the
            // third diacritic), which kitty reads the same way.
            let id = if in_tmux {
                (u32::from(rand::random::<u8>()) << 24) | u32::from(rand::random::<u8>().max(1))
            } else {
                rand::random::<u32>() | 1
            };
            let transmit = kitty_png_transmission(&unpadded(img, graphics, size), id, size, (fw, fh), in_tmux)?;
            // ratatui-image draws the placeholder cells for this id; it is given a 1-pixel image, and the
            // transmission it puts in front of the first cell is dropped (ours replaces it).
            let stand_in = Kitty::new(DynamicImage::new_rgba8(1, 1), size, id, in_tmux, false).map_err(err)?;
            let mut cells = Buffer::empty(Rect::from((Position::ORIGIN, size)));
            Image::new(&Protocol::Kitty(stand_in)).render(cells.area, &mut cells);
            let first = cells[(0, 0)].symbol();
            let placeholder = first.find(KITTY_PLACEHOLDER).ok_or("kitty placeholder missing")?;
            let first = first[placeholder..].to_string();
            cells[(0, 0)].set_symbol(&first);
            if in_tmux {
                for cell in &mut cells.content {
                    if let Color::Rgb(0, 0, index) = cell.fg {
                        cell.fg = Color::Indexed(index);
                    }
                }
            }
            Built::Kitty { cells, transmit }
        }
        GraphicsMode::Sixel => Built::Sequence { plain: sixel(&resized, size)?, size },
        GraphicsMode::Iterm2 => Built::Sequence { plain: iterm2(&resized, size)?, size },
        GraphicsMode::None => Built::Text,
    })
}

/// Kitty's unicode placeholder character (the image's cells are made of it).
const KITTY_PLACEHOLDER: char = '\u{10EEEE}';

/// The kitty graphics command that sends `img` as PNG under `id` and creates a virtual placement of `size` cells
/// for unicode placeholders (`a=T,U=1`), quietly (`q=2`), in base64 chunks of 4096 bytes; inside tmux each chunk
/// is wrapped in its own passthrough.
///
/// `img` is the fitted image without padding (and without alpha when it has none): only the dimension it fills is
/// given (`c` or `r`), and kitty derives the other from the image's aspect ratio (giving both would stretch the
/// image to the whole rectangle). The padding ratatui-image adds for the other protocols would cost an alpha
/// channel and bytes for nothing.
pub(super) fn kitty_png_transmission(
    img: &DynamicImage,
    id: u32,
    size: Size,
    cell: (u16, u16),
    in_tmux: bool,
) -> Result<String, String> {
    use std::fmt::Write as _;
    let png = png_bytes(img)?;
    // The image fills the width of its cells when w / (cols x cell width) >= h / (rows x cell height).
    let (w, h) = (u64::from(img.width()), u64::from(img.height()));
    let (cols, rows) = (u64::from(size.width), u64::from(size.height));
    let (cw, ch) = (u64::from(cell.0), u64::from(cell.1));
    let extent = if w * rows * ch >= h * cols * cw { format!("c={cols}") } else { format!("r={rows}") };
    let encoded = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &png);
    let chunks: Vec<&[u8]> = encoded.as_bytes().chunks(4096).collect();
    let mut out = String::with_capacity(encoded.len() + chunks.len() * 40 + 64);
    for (i, chunk) in chunks.iter().enumerate() {
        let more = u8::from(i + 1 < chunks.len());
        let mut cmd = String::from("\x1b_Gq=2,");
        if i == 0 {
            let _ = write!(cmd, "i={id},a=T,U=1,f=100,t=d,{extent},");
        }
        let _ = write!(cmd, "m={more};");
        cmd.push_str(std::str::from_utf8(chunk).map_err(|e| e.to_string())?);
        cmd.push_str("\x1b\\");
        out.push_str(&if in_tmux { tmux_wrap(&cmd) } else { cmd });
    }
    Ok(out)
}

/// The image fitted into `size` cells (never enlarged), without padding, RGB when it has no alpha.
fn unpadded(img: &DynamicImage, graphics: &Graphics, size: Size) -> DynamicImage {
    let (w, h) = pixels_for(graphics, size);
    let fitted =
        if img.width() <= w && img.height() <= h { img.clone() } else { img.resize(w, h, FilterType::Triangle) };
    if fitted.color().has_alpha() { fitted } else { DynamicImage::ImageRgb8(fitted.to_rgb8()) }
}

/// `img` as PNG, compressed as far as the encoder goes (this runs once per thumbnail, off the UI task, and the
/// bytes may cross a slow link).
pub(super) fn png_bytes(img: &DynamicImage) -> Result<Vec<u8>, String> {
    use image::codecs::png::{CompressionType, FilterType as PngFilter, PngEncoder};
    let mut png = Vec::new();
    let encoder = PngEncoder::new_with_quality(Cursor::new(&mut png), CompressionType::Best, PngFilter::Adaptive);
    img.write_with_encoder(encoder).map_err(|e| e.to_string())?;
    Ok(png)
}

/// A sixel image, after erasing the cells it covers. Dithering (Floyd-Steinberg, icy_sixel's default) keeps
/// photographs smooth in 256 colours, but on flat drawings and gradients its noise defeats sixel's run-length
/// encoding (20 KB instead of 5 KB for a 30x12-cell sample): when the dithered sequence costs more than 1.5x the
/// image's PNG, the undithered one is used if it is smaller.
fn sixel(img: &DynamicImage, size: Size) -> Result<String, String> {
    use icy_sixel::{EncodeOptions, sixel_encode};
    let rgba = img.to_rgba8();
    let (w, h) = (rgba.width() as usize, rgba.height() as usize);
    let encode = |diffusion: f32| {
        sixel_encode(rgba.as_raw(), w, h, &EncodeOptions { diffusion, ..EncodeOptions::default() })
            .map_err(|e| format!("sixel encoding error: {e}"))
    };
    let mut data = encode(EncodeOptions::default().diffusion)?;
    if data.len() as f64 > 1.5 * png_bytes(img)?.len() as f64 {
        let flat = encode(0.0)?;
        if flat.len() < data.len() {
            data = flat;
        }
    }
    let mut plain = String::with_capacity(data.len() + 16 * usize::from(size.height));
    erase_cells(&mut plain, size);
    plain.push_str(&data);
    Ok(plain)
}

/// An iTerm2 inline image (OSC 1337 File, a base64 PNG), after erasing the cells it covers.
fn iterm2(img: &DynamicImage, size: Size) -> Result<String, String> {
    use std::fmt::Write as _;
    let png = png_bytes(img)?;
    let mut plain = String::with_capacity(png.len() * 4 / 3 + 128);
    erase_cells(&mut plain, size);
    let _ = write!(
        plain,
        "\x1b]1337;File=inline=1;size={};width={}px;height={}px;doNotMoveCursor=1:",
        png.len(),
        img.width(),
        img.height()
    );
    base64::Engine::encode_string(&base64::engine::general_purpose::STANDARD, &png, &mut plain);
    plain.push('\x07');
    Ok(plain)
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
