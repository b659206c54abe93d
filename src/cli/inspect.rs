//! `kontext inspect FILE`: the request parameters kontext embedded in an image it wrote; and the
//! base draft `kontext run --from FILE` starts from.

use std::path::{Path, PathBuf};

use clap::Args;

use super::exit;
use crate::model::Draft;
use crate::runner::metadata::{self, ImageMetadata};
use crate::sanitize::strip_controls;
use crate::setup::Locations;

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// An image written by kontext (PNG or JPEG).
    pub file: PathBuf,
    /// Print the parameters as one JSON object.
    #[arg(long)]
    pub json: bool,
}

pub fn read_metadata(file: &Path) -> Result<ImageMetadata, String> {
    // An image kontext wrote is at most the size of an image it downloads; `/dev/zero`, a pipe
    // or a huge file is refused before reading.
    let bytes = crate::local_file::read_bounded(file, crate::model::MAX_LOCAL_IMAGE_BYTES)
        .map_err(|e| format!("cannot read it: {e}"))?;
    match metadata::read(&bytes)? {
        Some(m) => Ok(m),
        None => Err("it carries no kontext parameters (only images kontext wrote have them)".into()),
    }
}

pub fn inspect(args: InspectArgs) -> u8 {
    let meta = match read_metadata(&args.file) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("kontext: {}", strip_controls(&format!("{}: {e}", args.file.display())));
            return exit::INVALID_INPUT;
        }
    };
    if args.json {
        println!("{}", crate::sanitize::terminal_safe_json(&serde_json::to_string(&meta).unwrap_or_default()));
        return exit::OK;
    }
    for (key, value) in meta.fields() {
        // The file could have been crafted: never print its escape sequences.
        let value = strip_controls(&value);
        let mut lines = value.lines();
        println!("{key:<17}{}", lines.next().unwrap_or(""));
        for more in lines {
            println!("{:<17}{more}", "");
        }
    }
    exit::OK
}

/// A request to start from (a history entry or an image's parameters) and its endpoint.
pub struct BaseRequest {
    pub draft: Draft,
    pub endpoint: Option<String>,
}

/// The request an image was made with: its history entry when this data directory has it (local
/// inputs included), else the parameters in the file.
pub fn draft_from_file(file: &Path, locations: &Locations) -> Result<BaseRequest, String> {
    let meta = read_metadata(file)?;
    if let Ok(history) = crate::history::History::open(&locations.data_dir())
        && let Ok(detail) = history.get(&meta.request_id)
    {
        let mut draft = detail.to_draft();
        if let Some(seed) = meta.seed {
            draft.set("seed", seed.to_string());
        }
        return Ok(BaseRequest { draft, endpoint: Some(meta.endpoint) });
    }
    if let Some(i) = meta.image_urls.iter().position(|u| metadata::is_omitted_data_uri(u)) {
        return Err(format!(
            "input image {} was sent inline and is not stored in the file, and request {} is not in this history; give the input images with --image",
            i + 1,
            meta.request_id
        ));
    }
    let mut draft = Draft { images: meta.image_urls.clone(), ..Draft::default() };
    for (name, v) in meta.sent_values() {
        draft.set(&name, crate::model::value_text(&v));
    }
    Ok(BaseRequest { draft, endpoint: Some(meta.endpoint) })
}
