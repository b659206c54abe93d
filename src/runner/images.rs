//! Input images on the way in (inline or upload) and output images on the way out (download,
//! verify, write).

use std::path::{Path, PathBuf};

use base64::Engine;
use bytes::Bytes;
use serde::Serialize;

use super::metadata::{self, ImageMetadata};
use super::naming::OutputNaming;
use super::{JobError, JobEvent, JournalEntry, Recorder, write_atomically};
use crate::fal::{FalClient, RequestHandle};
use crate::model::{ImageSource, KontextInput, KontextOutput, MAX_DECODE_BYTES, MAX_IMAGE_SIDE, MAX_LOCAL_IMAGE_BYTES};

/// Turns every input into a URL fal can read: URLs and data: URIs pass through; local files go
/// inline when small, otherwise through fal storage.
pub(super) async fn resolve_inputs(
    client: &FalClient,
    images: &[ImageSource],
    data_uri_threshold: u64,
    rec: &Recorder<'_>,
) -> Result<Vec<String>, JobError> {
    let emit = |e| rec.emit(e);
    let mut urls = Vec::with_capacity(images.len());
    for (index, source) in images.iter().enumerate() {
        let path = match source {
            ImageSource::Url(u) | ImageSource::DataUri(u) => {
                urls.push(u.clone());
                continue;
            }
            ImageSource::Local(p) => p,
        };
        let name = file_name_of(path);
        let input_err = |message: String| JobError::Input { index, name: name.clone(), message };
        // Size and type before reading, a capped read, and a full decode: nothing is sent (or
        // copied into the history) that fal would refuse or that is not a whole image.
        let read_path = path.clone();
        let checked = tokio::task::spawn_blocking(move || {
            let bytes = read_input_file(&read_path)?;
            let image = check_input_image(&bytes)?;
            Ok::<_, String>((bytes, image))
        })
        .await
        .map_err(|e| input_err(format!("checking the file crashed: {e}")))?;
        let (bytes, checked) = checked.map_err(input_err)?;
        let content_type = checked.format.to_mime_type();
        rec.note(JournalEntry::InputFile { index, path, bytes: &bytes });
        if bytes.len() as u64 <= data_uri_threshold {
            let encoded = base64::engine::general_purpose::STANDARD.encode(&bytes);
            urls.push(format!("data:{content_type};base64,{encoded}"));
            continue;
        }
        emit(JobEvent::Uploading { index, name: name.clone(), bytes: bytes.len() as u64 });
        let url = client.upload(Bytes::from(bytes), content_type, &name).await.map_err(|error| JobError::Upload {
            index,
            name,
            error,
        })?;
        emit(JobEvent::Uploaded { index, url: url.clone() });
        urls.push(url);
    }
    Ok(urls)
}

/// Reads a local input image for sending: a regular file of at most
/// [`MAX_LOCAL_IMAGE_BYTES`] (checked by its size before a byte is read).
pub fn read_input_file(path: &Path) -> Result<Vec<u8>, String> {
    use crate::local_file::ReadError;
    crate::local_file::read_bounded(path, MAX_LOCAL_IMAGE_BYTES).map_err(|e| match e {
        ReadError::TooLarge { len, cap } => format!(
            "{} is {}; kontext sends local images of at most {} MiB: make it smaller or give a URL",
            path.display(),
            len.map(|l| format!("{} MiB", l.div_ceil(1024 * 1024))).unwrap_or_else(|| "larger than that".into()),
            cap / (1024 * 1024)
        ),
        other => format!("cannot read {}: {other}", path.display()),
    })
}

/// Checks that `bytes` are a PNG, JPEG, WebP or GIF image that decodes completely, no larger
/// than fal accepts ([`MAX_IMAGE_SIDE`]) and no costlier to decode than [`MAX_DECODE_BYTES`]:
/// truncated and corrupt files, and headers that promise a giant image, are caught here.
pub fn check_input_image(bytes: &[u8]) -> Result<VerifiedImage, String> {
    let (format, decoded) = decode_bounded(bytes)?;
    Ok(VerifiedImage { format, width: decoded.width(), height: decoded.height() })
}

/// A local image file read and decoded within the same bounds as an input image (its size by
/// `read_input_file`, its pixels and decode cost by [`check_input_image`]'s limits): what a
/// contact sheet reads back from the output folder.
pub fn open_image_bounded(path: &Path) -> Result<image::DynamicImage, String> {
    decode_bounded(&read_input_file(path)?).map(|(_, image)| image)
}

fn decode_bounded(bytes: &[u8]) -> Result<(image::ImageFormat, image::DynamicImage), String> {
    let format = accepted_format(bytes, "it")?;
    let mut reader = image::ImageReader::with_format(std::io::Cursor::new(bytes), format);
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    let kind = format.to_mime_type();
    let decoded = reader.decode().map_err(|e| match e {
        image::ImageError::Limits(_) => format!(
            "the {kind} image is too large: fal takes at most {MAX_IMAGE_SIDE}×{MAX_IMAGE_SIDE} pixels, and kontext decodes at most {} MiB",
            MAX_DECODE_BYTES / (1024 * 1024)
        ),
        other => format!("the {kind} data is damaged or cut short (it does not decode: {other})"),
    })?;
    Ok((format, decoded))
}

/// Cheap checks that a local image can work, before anything is read whole: it exists, is a
/// regular non-empty file of at most `MAX_LOCAL_IMAGE_BYTES`, and its first bytes are PNG, JPEG,
/// WebP or GIF. Given to `Draft::validate_with`, so each problem is reported with its image.
pub fn check_local_image(path: &Path) -> Result<(), String> {
    use std::io::Read;
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            format!("no such file {shown:?} (if this is meant as a URL, start it with https://)")
        }
        std::io::ErrorKind::PermissionDenied => format!("cannot read {shown:?}: permission denied"),
        _ => format!("cannot read {shown:?}: {e}"),
    })?;
    if !meta.is_file() {
        return Err(format!("{shown:?} is not a file"));
    }
    if meta.len() == 0 {
        return Err(format!("{shown:?} is empty"));
    }
    if meta.len() > MAX_LOCAL_IMAGE_BYTES {
        return Err(format!(
            "{shown:?} is {} MiB; kontext sends local images of at most {} MiB: make it smaller or give a URL",
            meta.len().div_ceil(1024 * 1024),
            MAX_LOCAL_IMAGE_BYTES / (1024 * 1024)
        ));
    }
    let mut head = [0u8; 32];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .map_err(|e| format!("cannot read {shown:?}: {e}"))?;
    accepted_format(&head[..n], &format!("{shown:?}")).map(|_| ())
}

/// The format of an input image by its first bytes, if it is one kontext sends (PNG, JPEG, WebP
/// or GIF); the error names `subject` ("it", or the file).
fn accepted_format(bytes: &[u8], subject: &str) -> Result<image::ImageFormat, String> {
    use image::ImageFormat as F;
    match image::guess_format(bytes) {
        Ok(f @ (F::Png | F::Jpeg | F::WebP | F::Gif)) => Ok(f),
        Ok(other) => Err(format!("{subject} is a {other:?} image; use PNG, JPEG, WebP or GIF")),
        Err(_) => Err(format!("{subject} is not an image kontext recognises (PNG, JPEG, WebP or GIF)")),
    }
}

/// [`read_input_file`] then [`check_input_image`]: every check a local input gets before it is
/// sent, for front ends to run before starting a job (on a blocking thread: it reads and decodes).
pub fn check_input_file(path: &Path) -> Result<VerifiedImage, String> {
    let bytes = read_input_file(path)?;
    check_input_image(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}

fn file_name_of(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "image".into())
}

/// An output image written to disk.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SavedImage {
    pub index: usize,
    pub path: PathBuf,
    pub width: u32,
    pub height: u32,
    pub content_type: String,
    pub nsfw: bool,
}

/// An image whose bytes were checked to be what they claim and to decode.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedImage {
    pub format: image::ImageFormat,
    pub width: u32,
    pub height: u32,
}

impl VerifiedImage {
    pub fn extension(&self) -> &'static str {
        match self.format {
            image::ImageFormat::Jpeg => "jpg",
            image::ImageFormat::Png => "png",
            image::ImageFormat::WebP => "webp",
            _ => "img",
        }
    }
}

/// Checks that `bytes` are the image type `claimed` says (when it says one) and decode fully.
pub fn verify_image(bytes: &[u8], claimed: Option<&str>) -> Result<VerifiedImage, String> {
    let format = image::guess_format(bytes).map_err(|_| "the data is not a recognised image".to_string())?;
    if let Some(claimed) = claimed {
        let claimed = claimed.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        let matches = match claimed.as_str() {
            "image/jpeg" | "image/jpg" => format == image::ImageFormat::Jpeg,
            "image/png" => format == image::ImageFormat::Png,
            "image/webp" => format == image::ImageFormat::WebP,
            // A generic type says nothing; anything else must match what the bytes are.
            "" | "application/octet-stream" | "binary/octet-stream" => true,
            _ => false,
        };
        if !matches {
            return Err(format!("claimed to be {claimed} but the data is {}", format.to_mime_type()));
        }
    }
    let decoded = image::load_from_memory_with_format(bytes, format)
        .map_err(|e| format!("the {} data does not decode: {e}", format.to_mime_type()))?;
    Ok(VerifiedImage { format, width: decoded.width(), height: decoded.height() })
}

/// Full decodes of outputs at once, in this process: one per core. A decode is CPU-bound, so
/// more at once finish no sooner, but each holds its whole bitmap (3 MB for 1 MP): 64 requests
/// of a sweep verifying together would otherwise hold 200 MB.
fn decode_slots() -> &'static tokio::sync::Semaphore {
    static SLOTS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    SLOTS.get_or_init(|| {
        tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get))
    })
}

/// Downloads (or decodes) every output image, verifies it and writes it as
/// `<out>/<name>` (see `OutputNaming`) — never a name the server chose.
pub(super) async fn save_outputs(
    client: &FalClient,
    handle: &RequestHandle,
    sent: &KontextInput,
    output: &KontextOutput,
    out_dir: &Path,
    naming: OutputNaming,
    rec: &Recorder<'_>,
) -> Result<Vec<SavedImage>, JobError> {
    let emit = |e| rec.emit(e);
    let day = crate::timefmt::today_utc();
    let mut saved = Vec::with_capacity(output.images.len());
    for (index, image) in output.images.iter().enumerate() {
        rec.note(JournalEntry::Downloading { index });
        emit(JobEvent::Downloading { index });
        let output_err = |message: String| JobError::Output { handle: Box::new(handle.clone()), index, message };
        // The result is stored: a failed download (network, CDN error) leaves the request to be
        // resumed later rather than losing a paid image.
        let media = client.download(&image.url).await.map_err(|error| JobError::Download {
            handle: Box::new(handle.clone()),
            index,
            error,
        })?;
        let claimed = image.content_type.clone().or(media.content_type.clone());
        let bytes = media.bytes;
        let check_bytes = bytes.clone();
        let slot = decode_slots().acquire().await.map_err(|e| output_err(format!("verification stopped: {e}")))?;
        let verified = tokio::task::spawn_blocking(move || verify_image(&check_bytes, claimed.as_deref())).await;
        drop(slot);
        let verified = verified.map_err(|e| output_err(format!("verification crashed: {e}")))?.map_err(output_err)?;
        if let (Some(w), Some(h)) = (image.width, image.height)
            && (w, h) != (verified.width, verified.height)
        {
            emit(JobEvent::Note(format!(
                "image {}: fal said {w}x{h}, the file is {}x{}",
                index + 1,
                verified.width,
                verified.height
            )));
        }
        // The bytes as fal served them go to the media store; the user's copy carries the
        // request's parameters.
        rec.note(JournalEntry::Output { index, url: &image.url, bytes: &bytes, image: &verified });
        let meta = ImageMetadata::new(&handle.endpoint, &handle.request_id, sent, Some(output.seed), index);
        let tagged = match metadata::embed(&bytes, &meta) {
            Ok(b) => b,
            Err(e) => {
                emit(JobEvent::Note(format!("image {}: parameters not embedded ({e})", index + 1)));
                bytes.to_vec()
            }
        };
        let name = naming.file_name(&handle.request_id, sent.prompt(), &day, index, verified.extension());
        let path = out_dir.join(name);
        let write_path = path.clone();
        tokio::task::spawn_blocking(move || write_atomically(&write_path, &tagged))
            .await
            .map_err(|e| JobError::Write { path: path.clone(), error: std::io::Error::other(e) })?
            .map_err(|error| JobError::Write { path: path.clone(), error })?;
        rec.note(JournalEntry::Saved { index, path: &path });
        emit(JobEvent::Saved { index, path: path.clone() });
        saved.push(SavedImage {
            index,
            path,
            width: verified.width,
            height: verified.height,
            content_type: verified.format.to_mime_type().to_string(),
            nsfw: output.nsfw(index),
        });
    }
    Ok(saved)
}

/// Request ids are uuids; anything else is reduced to a harmless file name.
#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_pixel(w, h, image::Rgb([10, 20, 30]));
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Png).unwrap();
        out.into_inner()
    }

    #[test]
    fn verifies_claimed_type_and_decoding() {
        let bytes = png(3, 2);
        let v = verify_image(&bytes, Some("image/png")).unwrap();
        assert_eq!((v.width, v.height, v.extension()), (3, 2, "png"));
        let err = verify_image(&bytes, Some("image/jpeg")).unwrap_err();
        assert!(err.contains("claimed to be image/jpeg"), "{err}");
        assert!(verify_image(b"<html>not an image</html>", None).is_err());
        let truncated = &bytes[..bytes.len() / 2];
        assert!(verify_image(truncated, Some("image/png")).is_err(), "a truncated PNG must not pass");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]

        /// The check every local input gets before it is sent: a damaged PNG or JPEG is an
        /// error, never a panic, and nothing it accepts is larger than fal takes.
        #[test]
        fn the_input_check_never_panics_on_damaged_images(
            jpeg in proptest::bool::ANY,
            edits in proptest::collection::vec((proptest::num::usize::ANY, proptest::num::u8::ANY, proptest::bool::ANY), 1..6),
        ) {
            let mut bytes = png(12, 9);
            if jpeg {
                let mut out = std::io::Cursor::new(Vec::new());
                image::RgbImage::new(12, 9).write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
                bytes = out.into_inner();
            }
            for (at, b, cut) in edits {
                let at = at % bytes.len().max(1);
                if cut { bytes.truncate(at.max(1)) } else if let Some(x) = bytes.get_mut(at) { *x = b }
            }
            if let Ok(v) = check_input_image(&bytes) {
                proptest::prop_assert!(v.width <= MAX_IMAGE_SIDE && v.height <= MAX_IMAGE_SIDE);
            }
        }
    }
}
