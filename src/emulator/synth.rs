//! Deterministic image synthesis: the emulator's stand-in for FLUX Kontext.
//!
//! An output is a pure function of (decoded input pixels, prompt, seed, the request's other
//! fields, size, output index, format): the inputs are laid out side by side on a
//! seed-coloured gradient canvas, tinted and striped by the prompt and fields, given contrast
//! and saturation by guidance, and labelled; then encoded as JPEG or PNG. Same inputs →
//! identical bytes.

use image::imageops::{self, FilterType};
use image::{DynamicImage, ImageEncoder, Rgb, RgbImage};
use serde_json::{Map, Value};

use super::util::Fnv;

/// Kontext's preferred output resolutions (~1 MP) by aspect ratio (BFL's table).
/// The largest side the emulator draws (a `match_input` request may ask for 14142 px; the
/// bill is for the size asked, the drawing is scaled down).
const MAX_DRAWN_SIDE: u32 = 2048;

/// `size` scaled down so its long side fits `max_side` (and the emulator's drawing limit).
pub(crate) fn fit((w, h): (u32, u32), max_side: Option<u32>) -> (u32, u32) {
    let m = max_side.filter(|m| *m > 0).unwrap_or(MAX_DRAWN_SIDE).min(MAX_DRAWN_SIDE);
    if w.max(h) <= m {
        return (w.max(1), h.max(1));
    }
    let s = f64::from(m) / f64::from(w.max(h));
    (((f64::from(w) * s).round() as u32).max(1), ((f64::from(h) * s).round() as u32).max(1))
}

fn colour(h: u64, shift: u32) -> Rgb<u8> {
    let v = h.rotate_right(shift);
    // Keep colours mid-bright so the label stays readable.
    Rgb([40 + (v & 0xff) as u8 % 176, 40 + ((v >> 8) & 0xff) as u8 % 176, 40 + ((v >> 16) & 0xff) as u8 % 176])
}

fn lerp(a: u8, b: u8, t: f32) -> u8 {
    (f32::from(a) + (f32::from(b) - f32::from(a)) * t).round() as u8
}

/// Decodes image bytes (JPEG, PNG, WebP); `None` if they are not an image.
pub(crate) fn decode(bytes: &[u8]) -> Option<RgbImage> {
    image::load_from_memory(bytes).ok().map(|i| i.to_rgb8())
}

/// A labelled tile standing in for an input the emulator may not fetch (non-loopback URL).
pub(crate) fn placeholder(index: usize, side: u32) -> RgbImage {
    let side = side.clamp(32, 1024);
    let h = Fnv::new().bytes(b"placeholder").u64(index as u64).finish();
    let (a, b) = (colour(h, 0), colour(h, 29));
    let mut img = RgbImage::from_fn(side, side, |x, y| {
        let t = (x + y) as f32 / (2 * side) as f32;
        let checker = ((x / (side / 8).max(1)) + (y / (side / 8).max(1))).is_multiple_of(2);
        let base = Rgb([lerp(a[0], b[0], t), lerp(a[1], b[1], t), lerp(a[2], b[2], t)]);
        if checker { base } else { Rgb([base[0] / 5 * 4, base[1] / 5 * 4, base[2] / 5 * 4]) }
    });
    let label = format!("OFFLINE {}", index + 1);
    let scale = (side / (6 * label.len() as u32 + 4)).max(1);
    let tw = 6 * scale * label.len() as u32;
    let x = side.saturating_sub(tw) / 2;
    let y = side.saturating_sub(7 * scale) / 2;
    fill_rect(&mut img, x.saturating_sub(scale), y.saturating_sub(scale), tw + 2 * scale, 9 * scale, Rgb([0, 0, 0]));
    draw_text(&mut img, x, y, scale, &label, Rgb([255, 255, 255]));
    img
}

/// What a request asks for that shows in its picture, so a sweep's grid has a different cell
/// for every point (like the real model, where guidance and seed change the result).
pub(crate) struct Look<'a> {
    pub prompt: &'a str,
    pub seed: u64,
    /// The request's fields (defaults applied): `guidance_scale` sets contrast and colour
    /// strength; the others that change an image (aspect ratio, steps, ...) shift the pattern.
    pub fields: &'a Map<String, Value>,
}

/// Fields that do not change what the model draws (how it is delivered or encoded), or that
/// have their own visible effect.
const FIELDS_NOT_IN_PATTERN: [&str; 6] =
    ["prompt", "seed", "guidance_scale", "sync_mode", "num_images", "output_format"];

/// Kontext [pro]'s default guidance (a request without the field looks like one with it).
const NEUTRAL_GUIDANCE: f32 = 3.5;

impl Look<'_> {
    fn guidance(&self) -> Option<f64> {
        self.fields.get("guidance_scale").and_then(Value::as_f64)
    }

    /// 0 for guidance 1 (washed out) to 1 for guidance 20 (vivid, hard), log-spaced so the
    /// usual 2 to 5 differ visibly.
    fn strength(&self) -> f32 {
        let g = self.guidance().map_or(NEUTRAL_GUIDANCE, |g| g as f32).clamp(1.0, 20.0);
        g.ln() / 20f32.ln()
    }

    fn pattern_hash(&self) -> u64 {
        let mut keys: Vec<&String> =
            self.fields.keys().filter(|k| !FIELDS_NOT_IN_PATTERN.contains(&k.as_str())).collect();
        keys.sort();
        let mut h = Fnv::new().bytes(self.prompt.as_bytes());
        for k in keys {
            h = h.bytes(k.as_bytes()).bytes(self.fields[k].to_string().as_bytes());
        }
        h.finish()
    }

    fn label(&self, index: u32) -> String {
        match self.guidance() {
            Some(g) => format!("SEED {} G {g} #{}", self.seed, index + 1),
            None => format!("SEED {} #{}", self.seed, index + 1),
        }
    }
}

/// Synthesizes one output image and encodes it; returns (bytes, content type).
///
/// The seed picks the palette, the gradient's and the stripes' direction; the prompt and the
/// other fields the stripes' frequency and phase; both the tint; guidance the contrast, the
/// saturation and the stripes' depth.
pub(crate) fn synthesize(
    inputs: &[RgbImage],
    look: &Look<'_>,
    size: (u32, u32),
    index: u32,
    output_format: &str,
) -> Result<(Vec<u8>, &'static str), image::ImageError> {
    let (w, h) = (size.0.max(1), size.1.max(1));
    let hash = Fnv::new().u64(look.seed).u64(u64::from(index)).finish();
    let (c1, c2) = (colour(hash, 0), colour(hash, 24));
    let angle = (hash >> 56) as f32 / 255.0 * std::f32::consts::TAU;
    let (dx, dy) = (angle.cos(), angle.sin());
    let norm = (w as f32).hypot(h as f32).max(1.0);
    let mut canvas = RgbImage::from_fn(w, h, |x, y| {
        let t = ((x as f32 * dx + y as f32 * dy) / norm + 1.0) / 2.0;
        Rgb([lerp(c1[0], c2[0], t), lerp(c1[1], c2[1], t), lerp(c1[2], c2[2], t)])
    });

    // Inputs side by side, each fitted into its column with a margin.
    let n = inputs.len().max(1) as u32;
    let cell_w = (w / n).max(1);
    let margin = (w.min(h) / 24).max(1);
    for (i, input) in inputs.iter().enumerate() {
        let (iw, ih) = input.dimensions();
        if iw == 0 || ih == 0 {
            continue;
        }
        let avail_w = cell_w.saturating_sub(2 * margin).max(1);
        let avail_h = h.saturating_sub(2 * margin).max(1);
        let s = (avail_w as f32 / iw as f32).min(avail_h as f32 / ih as f32);
        let tw = ((iw as f32 * s).round() as u32).max(1);
        let th = ((ih as f32 * s).round() as u32).max(1);
        // `thumbnail` (area average) for down-scaling is fast; up-scaling needs a filter.
        let fitted = if tw <= iw && th <= ih {
            imageops::thumbnail(input, tw, th)
        } else {
            imageops::resize(input, tw, th, FilterType::Triangle)
        };
        let x = i as u32 * cell_w + (cell_w.saturating_sub(tw)) / 2;
        let y = h.saturating_sub(th) / 2;
        imageops::overlay(&mut canvas, &fitted, i64::from(x), i64::from(y));
    }
    restyle(&mut canvas, look, hash);

    let label = look.label(index);
    let scale = (w.min(h) / 160).max(1);
    let pad = 2 * scale;
    let ty = h.saturating_sub(7 * scale + 2 * pad);
    fill_rect(&mut canvas, 0, ty, (6 * label.len() as u32 + 2) * scale, 7 * scale + 2 * pad, Rgb([0, 0, 0]));
    draw_text(&mut canvas, pad, ty + pad, scale, &label, Rgb([255, 255, 255]));

    encode(&canvas, output_format)
}

/// Tints the picture, lays stripes over it and sets its contrast and saturation by guidance.
/// The seed (`seed_hash`) turns the stripes and shares the tint: an input that fills the
/// picture still looks different at every seed.
fn restyle(canvas: &mut RgbImage, look: &Look<'_>, seed_hash: u64) {
    let long_side = canvas.width().max(canvas.height()) as f32;
    let pattern = look.pattern_hash();
    let tint = colour(pattern ^ seed_hash, 48);
    // 3 to 12 stripes across the picture, in a direction and phase of their own.
    let stripes = 3.0 + (pattern & 0xff) as f32 / 255.0 * 9.0;
    let direction = ((seed_hash >> 40) & 0xff) as f32 / 255.0 * std::f32::consts::PI;
    let phase = ((pattern >> 16) & 0xff) as f32 / 255.0 * std::f32::consts::TAU;
    let strength = look.strength();
    let contrast = 0.45 + 1.1 * strength;
    let saturation = 0.2 + 1.6 * strength;
    let stripe_depth = 0.06 + 0.3 * strength;
    let frequency = stripes * std::f32::consts::TAU / long_side;
    let (sx, sy) = (direction.cos() * frequency, direction.sin() * frequency);
    for (x, y, p) in canvas.enumerate_pixels_mut() {
        let wave = 1.0 + stripe_depth * (x as f32 * sx + y as f32 * sy + phase).sin();
        let rgb: [f32; 3] = std::array::from_fn(|c| {
            let tinted = f32::from(p[c]) + (f32::from(tint[c]) - f32::from(p[c])) * 0.22;
            tinted * wave
        });
        let grey = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2];
        for c in 0..3 {
            let saturated = grey + (rgb[c] - grey) * saturation;
            p[c] = (128.0 + (saturated - 128.0) * contrast).round().clamp(0.0, 255.0) as u8;
        }
    }
}

/// Encodes as PNG or JPEG (quality 90); both encoders are deterministic.
pub(crate) fn encode(img: &RgbImage, output_format: &str) -> Result<(Vec<u8>, &'static str), image::ImageError> {
    let mut out = Vec::new();
    if output_format == "png" {
        image::codecs::png::PngEncoder::new(&mut out).write_image(
            img.as_raw(),
            img.width(),
            img.height(),
            image::ExtendedColorType::Rgb8,
        )?;
        Ok((out, "image/png"))
    } else {
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
            .encode_image(&DynamicImage::ImageRgb8(img.clone()))?;
        Ok((out, "image/jpeg"))
    }
}

fn fill_rect(img: &mut RgbImage, x: u32, y: u32, w: u32, h: u32, c: Rgb<u8>) {
    let (iw, ih) = img.dimensions();
    for yy in y..(y.saturating_add(h)).min(ih) {
        for xx in x..(x.saturating_add(w)).min(iw) {
            img.put_pixel(xx, yy, c);
        }
    }
}

/// Draws text with the built-in 5x7 bitmap font (upper-case letters, digits, a few symbols).
pub(crate) fn draw_text(img: &mut RgbImage, x: u32, y: u32, scale: u32, text: &str, c: Rgb<u8>) {
    let (iw, ih) = img.dimensions();
    for (ci, ch) in text.chars().enumerate() {
        let rows = glyph(ch.to_ascii_uppercase());
        let gx = x + ci as u32 * 6 * scale;
        for (ry, bits) in rows.iter().enumerate() {
            for rx in 0..5u32 {
                if bits & (0x10 >> rx) == 0 {
                    continue;
                }
                for sy in 0..scale {
                    for sx in 0..scale {
                        let px = gx + rx * scale + sx;
                        let py = y + ry as u32 * scale + sy;
                        if px < iw && py < ih {
                            img.put_pixel(px, py, c);
                        }
                    }
                }
            }
        }
    }
}

fn glyph(c: char) -> [u8; 7] {
    match c {
        '0' => [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E],
        '1' => [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
        '2' => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F],
        '3' => [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
        '4' => [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02],
        '5' => [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
        '6' => [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E],
        '7' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        '8' => [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E],
        '9' => [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
        'A' => [0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'B' => [0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E],
        'C' => [0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E],
        'D' => [0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C],
        'E' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F],
        'F' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10],
        'G' => [0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F],
        'H' => [0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'I' => [0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E],
        'J' => [0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C],
        'K' => [0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11],
        'L' => [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F],
        'M' => [0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11],
        'N' => [0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11],
        'O' => [0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'P' => [0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10],
        'Q' => [0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D],
        'R' => [0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11],
        'S' => [0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E],
        'T' => [0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
        'U' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'V' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04],
        'W' => [0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A],
        'X' => [0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11],
        'Y' => [0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04],
        'Z' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F],
        ' ' => [0; 7],
        '-' => [0, 0, 0, 0x1F, 0, 0, 0],
        ':' => [0, 0x0C, 0x0C, 0, 0x0C, 0x0C, 0],
        '.' => [0, 0, 0, 0, 0, 0x0C, 0x0C],
        '#' => [0x0A, 0x0A, 0x1F, 0x0A, 0x1F, 0x0A, 0x0A],
        _ => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x00, 0x04],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        let size = |ratio: Option<&str>, first, max| {
            let mut body = serde_json::Map::new();
            if let Some(r) = ratio {
                body.insert("aspect_ratio".into(), r.into());
            }
            fit(crate::model::cost::output_size(&body, first).unwrap(), max)
        };
        assert_eq!(size(Some("16:9"), None, None), (1392, 752));
        assert_eq!(size(None, Some((800, 600)), None), (1184, 880));
        assert_eq!(size(Some("1:1"), None, Some(256)), (256, 256));
        assert_eq!(size(Some("21:9"), None, Some(256)), (256, 110));
        assert_eq!(fit((14142, 7071), None), (2048, 1024));
    }

    fn fields(pairs: &[(&str, Value)]) -> Map<String, Value> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
    }

    fn draw(seed: u64, prompt: &str, f: &Map<String, Value>, format: &str) -> Vec<u8> {
        let inp = vec![placeholder(0, 64)];
        synthesize(&inp, &Look { prompt, seed, fields: f }, (64, 48), 0, format).unwrap().0
    }

    #[test]
    fn deterministic() {
        let f = fields(&[("guidance_scale", 3.5.into())]);
        assert_eq!(draw(1, "p", &f, "png"), draw(1, "p", &f, "png"), "same input, same bytes");
        assert_eq!(draw(1, "p", &f, "jpeg"), draw(1, "p", &f, "jpeg"));
        assert_ne!(draw(1, "p", &f, "png"), draw(2, "p", &f, "png"), "the seed shows");
        assert_ne!(draw(1, "p", &f, "png"), draw(1, "q", &f, "png"), "the prompt shows");
    }

    fn pixels(bytes: &[u8]) -> RgbImage {
        decode(bytes).unwrap()
    }

    /// Mean absolute difference per channel, 0..255.
    fn difference(a: &RgbImage, b: &RgbImage) -> f64 {
        let sum: u64 = a.as_raw().iter().zip(b.as_raw()).map(|(x, y)| u64::from(x.abs_diff(*y))).sum();
        sum as f64 / a.as_raw().len() as f64
    }

    /// Spread of the pixel values (standard deviation over every channel) above the label.
    fn contrast(img: &RgbImage) -> f64 {
        let above_label = imageops::crop_imm(img, 0, 0, img.width(), img.height() * 3 / 4).to_image();
        let v = above_label.as_raw();
        let mean = v.iter().map(|&x| f64::from(x)).sum::<f64>() / v.len() as f64;
        (v.iter().map(|&x| (f64::from(x) - mean).powi(2)).sum::<f64>() / v.len() as f64).sqrt()
    }

    #[test]
    fn guidance_changes_the_pixels_visibly_and_higher_guidance_is_harder() {
        let low = pixels(&draw(7, "p", &fields(&[("guidance_scale", 2.0.into())]), "png"));
        let high = pixels(&draw(7, "p", &fields(&[("guidance_scale", 5.0.into())]), "png"));
        assert!(difference(&low, &high) > 8.0, "visibly different: {}", difference(&low, &high));
        assert!(contrast(&high) > contrast(&low) * 1.2, "{} vs {}", contrast(&high), contrast(&low));
    }

    #[test]
    fn other_fields_change_the_pattern_but_delivery_does_not() {
        let base = fields(&[("guidance_scale", 3.5.into()), ("aspect_ratio", "1:1".into())]);
        let wide = fields(&[("guidance_scale", 3.5.into()), ("aspect_ratio", "16:9".into())]);
        assert_ne!(draw(1, "p", &base, "png"), draw(1, "p", &wide, "png"));
        let mut synced = base.clone();
        synced.insert("sync_mode".into(), true.into());
        assert_eq!(draw(1, "p", &base, "png"), draw(1, "p", &synced, "png"), "sync_mode draws the same picture");
    }
}
