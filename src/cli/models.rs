//! `kontext models`: the endpoints kontext can drive (bundled and added), one endpoint's fields,
//! and `models add`, which fetches an endpoint's schema from fal's model API.

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::exit;
use crate::model::{EndpointSchema, ImageInput};
use crate::runner::catalog;
use crate::sanitize::{one_line, terminal_safe_json};
use crate::setup::{Locations, connect};

#[derive(Debug, Args)]
pub struct ModelsArgs {
    #[command(subcommand)]
    pub command: Option<ModelsCommand>,
    /// The list as a JSON array.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// The fields of one endpoint: kind, range or choices, default, flag, help.
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Fetch an endpoint's schema from fal's model API into the data directory.
    Add {
        id: String,
        #[command(flatten)]
        connect: super::ConnectArgs,
    },
}

pub async fn models(args: ModelsArgs, locations: &Locations) -> u8 {
    match args.command {
        None => list(locations, args.json),
        Some(ModelsCommand::Show { id, json }) => show(locations, &id, json),
        Some(ModelsCommand::Add { id, connect }) => add(locations, &id, &connect).await,
    }
}

fn images_text(images: &ImageInput) -> String {
    match images {
        ImageInput::None => "none".into(),
        ImageInput::One { .. } => "1".into(),
        ImageInput::List { min, max, .. } => format!("{min}-{max}"),
    }
}

fn list(locations: &Locations, as_json: bool) -> u8 {
    let data_dir = locations.data_dir();
    let (catalog, problems) = catalog::load_catalog(&data_dir);
    for p in &problems {
        eprintln!("kontext: an added endpoint description is ignored: {}", one_line(p));
    }
    let (bundled, cached) = catalog::load_prices(&data_dir);
    let rows: Vec<Value> = catalog
        .iter()
        .map(|s| {
            let price = catalog::price_for(&bundled, cached.as_ref(), &s.endpoint_id);
            json!({
                "endpoint_id": s.endpoint_id,
                "title": s.title,
                "images": {"min": s.images.min(), "max": s.images.max()},
                "unit_price": price.map(|(p, _)| p.unit_price),
                "unit": price.map(|(p, _)| p.unit.clone()).unwrap_or_else(|| s.price_unit.as_str().to_string()),
                "price_source": price.map(|(_, src)| src.to_string()),
            })
        })
        .collect();
    if as_json {
        println!("{}", terminal_safe_json(&Value::Array(rows).to_string()));
        return exit::OK;
    }
    println!("{:<44}  {:<38}  {:>6}  {:>16}", "endpoint", "title", "images", "price");
    for (s, r) in catalog.iter().zip(&rows) {
        let price = match r["unit_price"].as_f64() {
            Some(p) => format!("${p} / {}", r["unit"].as_str().unwrap_or("")),
            None => "unknown".into(),
        };
        println!(
            "{:<44}  {:<38}  {:>6}  {:>16}",
            one_line(&s.endpoint_id),
            one_line(&s.title),
            images_text(&s.images),
            price
        );
    }
    let source = rows.iter().find_map(|r| r["price_source"].as_str()).unwrap_or("no price table");
    println!("prices: {}", one_line(source));
    exit::OK
}

fn show(locations: &Locations, id: &str, as_json: bool) -> u8 {
    let (catalog, _) = catalog::load_catalog(&locations.data_dir());
    let schema = match catalog.require(id) {
        Ok(s) => s,
        Err(m) => {
            eprintln!("kontext: {}", one_line(&m));
            return exit::INVALID_INPUT;
        }
    };
    if as_json {
        println!("{}", terminal_safe_json(&describe_json(schema).to_string()));
        return exit::OK;
    }
    println!("{}  ({})", one_line(&schema.endpoint_id), one_line(&schema.title));
    println!(
        "images   {}{}",
        images_text(&schema.images),
        schema.images.field().map(|f| format!(" ({f}, --image)")).unwrap_or_default()
    );
    println!("billed   per {}", schema.price_unit.as_str());
    println!("source   {} ({})", one_line(&schema.source), one_line(&schema.date));
    for f in &schema.fields {
        let default = f.default_text().map(|d| format!(", default {d}")).unwrap_or_default();
        let required = if f.required { ", required" } else { "" };
        println!("  {:<24} {}{default}{required}   {}", f.name, f.kind.describe(), f.flag);
        if !f.help.is_empty() {
            println!("  {:<24} {}", "", one_line(&f.help));
        }
    }
    exit::OK
}

/// One endpoint for a machine: its fields as a form would build them.
pub fn describe_json(s: &EndpointSchema) -> Value {
    json!({
        "endpoint_id": s.endpoint_id,
        "title": s.title,
        "images": {"field": s.images.field(), "min": s.images.min(), "max": s.images.max()},
        "unit": s.price_unit.as_str(),
        "source": s.source,
        "date": s.date,
        "fields": s.fields.iter().map(|f| json!({
            "name": f.name, "title": f.title, "kind": f.kind.describe(), "required": f.required,
            "default": f.default, "flag": f.flag, "help": f.help,
        })).collect::<Vec<_>>(),
    })
}

async fn add(locations: &Locations, id: &str, args: &super::ConnectArgs) -> u8 {
    if let Err(m) = crate::model::Endpoint::parse(id) {
        eprintln!("kontext: {}", one_line(&m));
        return exit::INVALID_INPUT;
    }
    let data_dir = locations.data_dir();
    if crate::model::Catalog::bundled().get(id).is_some() {
        println!("{id} ships with kontext; nothing to add (`kontext models show {id}`)");
        return exit::OK;
    }
    let config = match locations.load_config() {
        Ok((c, _)) => c,
        Err(e) => {
            eprintln!("kontext: {}", crate::sanitize::strip_controls(&e.to_string()));
            return exit::INVALID_INPUT;
        }
    };
    let connection = match connect(&config, &args.options()).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("kontext: {}", crate::sanitize::strip_controls(&e.to_string()));
            return exit::INVALID_INPUT;
        }
    };
    eprintln!("kontext: asking fal's model API ({}) for {id}", connection.target.describe());
    let answer = connection.client.model_schema(id).await;
    let pricing = connection.client.pricing(&[id]).await.ok();
    connection.shutdown().await;
    let answer = match answer {
        Ok(a) => a,
        Err(e) => {
            eprintln!("kontext: {}", crate::sanitize::strip_controls(&e.to_string()));
            return exit::NETWORK;
        }
    };
    let Some(mut item) =
        answer.get("models").and_then(Value::as_array).and_then(|m| m.iter().find(|i| i["endpoint_id"] == id)).cloned()
    else {
        eprintln!("kontext: fal's model API does not know {id:?}; check the id (owner/app/path) on fal.ai");
        return exit::INVALID_INPUT;
    };
    // Our block: where and when it came from, and the unit fal bills it by.
    let unit = pricing
        .as_ref()
        .and_then(|p| {
            p["prices"].as_array()?.iter().find(|x| x["endpoint_id"] == id)?["unit"].as_str().map(str::to_string)
        })
        .unwrap_or_else(|| "image".into());
    let today = crate::timefmt::today_utc();
    item["x-kontext"] = json!({
        "source": format!("fal's model API (GET /v1/models?endpoint_id={id}&expand=openapi-3.0), via kontext models add"),
        "date": today,
        "price_unit": {"unit": unit, "counts_input_megapixels": false},
    });
    let schema = match EndpointSchema::from_value(&item) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("kontext: {id} cannot be used: {}", one_line(&e.to_string()));
            eprintln!(
                "kontext: kontext's form fills text, number, true/false and choice fields and image URLs; nothing was added"
            );
            return exit::INVALID_INPUT;
        }
    };
    let text = serde_json::to_string_pretty(&item).unwrap_or_default();
    match catalog::save_description(&data_dir, id, &text) {
        Ok(path) => {
            println!(
                "added {id} ({} fields, images {}) to {}",
                schema.fields.len(),
                images_text(&schema.images),
                path.display()
            );
            exit::OK
        }
        Err(e) => {
            eprintln!("kontext: {}", one_line(&e));
            exit::FAILURE
        }
    }
}
