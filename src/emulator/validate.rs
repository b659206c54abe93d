//! Validation of an endpoint's input against its schema (the same `endpoints/*.json` data the
//! client validates with), reproducing pydantic v2 (lax mode) error items the way fal reports
//! them: `{"loc":["body",field,…],"msg","type","url","ctx"?,"input"}`.

use serde_json::{Map, Value, json};

use crate::model::{EndpointSchema, FieldKind, ImageInput};

/// The validated, defaulted model input.
#[derive(Debug, Clone)]
pub(crate) struct KontextInput {
    pub prompt: String,
    pub image_urls: Vec<String>,
    pub seed: Option<u64>,
    pub sync_mode: bool,
    pub num_images: u32,
    pub output_format: String,
    pub enhance_prompt: bool,
    /// Every field of the schema that has a value (defaults included), images aside.
    pub fields: Map<String, Value>,
}

/// One pydantic-style error item.
pub(crate) fn error_item(loc: &[Value], msg: &str, ty: &str, ctx: Option<Value>, input: &Value) -> Value {
    let mut full_loc = vec![json!("body")];
    full_loc.extend(loc.iter().cloned());
    let mut m = Map::new();
    m.insert("loc".into(), Value::Array(full_loc));
    m.insert("msg".into(), json!(msg));
    m.insert("type".into(), json!(ty));
    m.insert("url".into(), json!(format!("https://docs.fal.ai/errors/#{ty}")));
    if let Some(c) = ctx {
        m.insert("ctx".into(), c);
    }
    m.insert("input".into(), input.clone());
    Value::Object(m)
}

struct Errors(Vec<Value>);

impl Errors {
    fn push(&mut self, field: &str, msg: &str, ty: &str, ctx: Option<Value>, input: &Value) {
        self.0.push(error_item(&[json!(field)], msg, ty, ctx, input));
    }
}

/// Pydantic's "expected" rendering: `'a', 'b' or 'c'`.
fn expected(options: &[&str]) -> String {
    let quoted: Vec<String> = options.iter().map(|o| format!("'{o}'")).collect();
    match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        Some((last, _)) => last.clone(),
        None => String::new(),
    }
}

fn as_int(v: &Value) -> Result<i128, (&'static str, &'static str)> {
    match v {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Ok(i128::from(i))
            } else if let Some(u) = n.as_u64() {
                Ok(i128::from(u))
            } else if let Some(f) = n.as_f64() {
                if f.fract() == 0.0 && f.abs() < 1e30 {
                    Ok(f as i128)
                } else {
                    Err(("int_from_float", "Input should be a valid integer, got a number with a fractional part"))
                }
            } else {
                Err(("int_type", "Input should be a valid integer"))
            }
        }
        Value::String(s) => s
            .trim()
            .parse::<i128>()
            .map_err(|_| ("int_parsing", "Input should be a valid integer, unable to parse string as an integer")),
        _ => Err(("int_type", "Input should be a valid integer")),
    }
}

fn as_float(v: &Value) -> Result<f64, (&'static str, &'static str)> {
    match v {
        Value::Number(n) => n.as_f64().ok_or(("float_type", "Input should be a valid number")),
        Value::String(s) => s
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .ok_or(("float_parsing", "Input should be a valid number, unable to parse string as a number")),
        _ => Err(("float_type", "Input should be a valid number")),
    }
}

fn as_bool(v: &Value) -> Result<bool, (&'static str, &'static str)> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::Number(n) if n.as_i64() == Some(0) => Ok(false),
        Value::Number(n) if n.as_i64() == Some(1) => Ok(true),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "t" | "yes" | "y" | "on" => Ok(true),
            "0" | "false" | "f" | "no" | "n" | "off" => Ok(false),
            _ => Err(("bool_parsing", "Input should be a valid boolean, unable to interpret input")),
        },
        _ => Err(("bool_type", "Input should be a valid boolean")),
    }
}

/// A number for `ctx`, rendered as an integer when it is one (fal's docs show `{"le":20}`).
fn num(v: f64) -> Value {
    if v.fract() == 0.0 { json!(v as i64) } else { json!(v) }
}

fn range_check(errs: &mut Errors, field: &str, v: f64, ge: f64, le: f64, input: &Value) -> bool {
    if v < ge {
        errs.push(
            field,
            &format!("Input should be greater than or equal to {}", num(ge)),
            "greater_than_equal",
            Some(json!({ "ge": num(ge) })),
            input,
        );
        false
    } else if v > le {
        errs.push(
            field,
            &format!("Input should be less than or equal to {}", num(le)),
            "less_than_equal",
            Some(json!({ "le": num(le) })),
            input,
        );
        false
    } else {
        true
    }
}

fn enum_check(errs: &mut Errors, field: &str, v: &Value, options: &[&str]) -> Option<String> {
    // fal's schema declares these as (string) Enums: a JSON number is not coerced.
    match v {
        Value::String(s) if options.contains(&s.as_str()) => Some(s.clone()),
        _ => {
            let exp = expected(options);
            errs.push(field, &format!("Input should be {exp}"), "enum", Some(json!({ "expected": exp })), v);
            None
        }
    }
}

fn images(errs: &mut Errors, images: &ImageInput, obj: &Map<String, Value>, body: &Value) -> Vec<String> {
    match images {
        ImageInput::None => Vec::new(),
        ImageInput::One { field } => match obj.get(field) {
            None => {
                errs.push(field, "Field required", "missing", None, body);
                Vec::new()
            }
            Some(Value::String(s)) => vec![s.clone()],
            Some(v) => {
                errs.push(field, "Input should be a valid string", "string_type", None, v);
                Vec::new()
            }
        },
        ImageInput::List { field, min, .. } => match obj.get(field) {
            None => {
                errs.push(field, "Field required", "missing", None, body);
                Vec::new()
            }
            Some(Value::Array(items)) => {
                let mut urls = Vec::with_capacity(items.len());
                for (i, it) in items.iter().enumerate() {
                    match it {
                        Value::String(s) => urls.push(s.clone()),
                        _ => errs.0.push(error_item(
                            &[json!(field), json!(i)],
                            "Input should be a valid string",
                            "string_type",
                            None,
                            it,
                        )),
                    }
                }
                if items.len() < *min {
                    errs.push(
                        field,
                        &format!("List should have at least {min} item after validation, not {}", items.len()),
                        "too_short",
                        Some(json!({"field_type": "List", "min_length": min, "actual_length": items.len()})),
                        &Value::Array(items.clone()),
                    );
                }
                urls
            }
            Some(v) => {
                errs.push(field, "Input should be a valid list", "list_type", None, v);
                Vec::new()
            }
        },
    }
}

/// One field's value, checked as pydantic would; `None` after an error was pushed.
fn check_field(errs: &mut Errors, name: &str, kind: &FieldKind, v: &Value) -> Option<Value> {
    let failed = |errs: &mut Errors, (ty, msg): (&str, &str)| {
        errs.push(name, msg, ty, None, v);
        None
    };
    match kind {
        FieldKind::Text => match v {
            Value::String(_) => Some(v.clone()),
            _ => failed(errs, ("string_type", "Input should be a valid string")),
        },
        FieldKind::Bool => match as_bool(v) {
            Ok(b) => Some(Value::Bool(b)),
            Err(e) => failed(errs, e),
        },
        FieldKind::Integer { min, max } => {
            let i = match as_int(v) {
                Ok(i) => i,
                Err(e) => return failed(errs, e),
            };
            let (lo, hi) = (*min != i128::from(i64::MIN), *max != i128::from(u64::MAX));
            if lo && i < *min {
                let m = *min as f64;
                range_check(errs, name, i as f64, m, f64::INFINITY, v);
                return None;
            }
            if hi && i > *max {
                range_check(errs, name, i as f64, f64::NEG_INFINITY, *max as f64, v);
                return None;
            }
            match (u64::try_from(i), i64::try_from(i)) {
                (Ok(u), _) => Some(Value::from(u)),
                (_, Ok(s)) => Some(Value::from(s)),
                _ => failed(
                    errs,
                    ("int_parsing", "Input should be a valid integer, unable to parse input as an integer"),
                ),
            }
        }
        FieldKind::Number { min, max } => {
            let f = match as_float(v) {
                Ok(f) => f,
                Err(e) => return failed(errs, e),
            };
            range_check(errs, name, f, min.unwrap_or(f64::NEG_INFINITY), max.unwrap_or(f64::INFINITY), v)
                .then(|| Value::from(f))
        }
        FieldKind::Choice(options) => {
            let options: Vec<&str> = options.iter().map(String::as_str).collect();
            enum_check(errs, name, v, &options).map(Value::String)
        }
    }
}

/// Validates the raw JSON body against `schema`; `Err` carries ALL error items (the 422
/// `detail` list). Unknown fields are ignored, as pydantic does by default.
pub(crate) fn validate(schema: &EndpointSchema, body: &Value) -> Result<KontextInput, Vec<Value>> {
    let Some(obj) = body.as_object() else {
        return Err(vec![json!({
            "loc": ["body"],
            "msg": "Input should be a valid dictionary or object to extract fields from",
            "type": "model_attributes_type",
            "url": "https://docs.fal.ai/errors/#model_attributes_type",
            "input": body,
        })]);
    };
    let mut errs = Errors(Vec::new());
    let mut fields = Map::new();
    let mut image_urls = Vec::new();
    let mut images_done = false;
    for spec in &schema.fields {
        // The image field sits after the prompt in fal's error order.
        if !images_done && spec.name != "prompt" {
            image_urls = images(&mut errs, &schema.images, obj, body);
            images_done = true;
        }
        match obj.get(&spec.name) {
            None if spec.required => errs.push(&spec.name, "Field required", "missing", None, body),
            None => {
                if let Some(d) = &spec.default {
                    fields.insert(spec.name.clone(), d.clone());
                }
            }
            // Optional fields take null as "not given".
            Some(Value::Null) if !spec.required && spec.default.is_none() => {}
            Some(v) => {
                if let Some(ok) = check_field(&mut errs, &spec.name, &spec.kind, v) {
                    fields.insert(spec.name.clone(), ok);
                }
            }
        }
    }
    if !images_done {
        image_urls = images(&mut errs, &schema.images, obj, body);
    }
    if !errs.0.is_empty() {
        return Err(errs.0);
    }
    let text = |name: &str| fields.get(name).and_then(Value::as_str).map(str::to_string);
    let flag = |name: &str| fields.get(name).and_then(Value::as_bool).unwrap_or(false);
    Ok(KontextInput {
        prompt: text("prompt").unwrap_or_default(),
        image_urls,
        seed: fields.get("seed").and_then(Value::as_u64),
        sync_mode: flag("sync_mode"),
        num_images: fields.get("num_images").and_then(Value::as_u64).unwrap_or(1) as u32,
        output_format: text("output_format").unwrap_or_else(|| "jpeg".into()),
        enhance_prompt: flag("enhance_prompt"),
        fields,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Catalog;

    fn schema(id: &str) -> &'static EndpointSchema {
        Catalog::bundled().get(id).unwrap()
    }

    #[test]
    fn defaults() {
        let multi = schema("fal-ai/flux-pro/kontext/multi");
        let v = validate(multi, &json!({"prompt": "p", "image_urls": ["data:x"], "extra": 1})).unwrap();
        assert_eq!(v.num_images, 1);
        assert_eq!(v.output_format, "jpeg");
        assert_eq!(v.fields["safety_tolerance"], "2");
        assert!(!v.fields.contains_key("aspect_ratio"));
        let t2i = validate(schema("fal-ai/flux-pro/kontext/text-to-image"), &json!({"prompt": "p"})).unwrap();
        assert_eq!(t2i.fields["aspect_ratio"], "1:1");
    }

    #[test]
    fn each_endpoint_has_its_own_rules() {
        let one = schema("fal-ai/flux-pro/kontext");
        let err = validate(one, &json!({"prompt": "p", "image_urls": ["a"]})).unwrap_err();
        assert_eq!(err[0]["loc"], json!(["body", "image_url"]));
        let dev = schema("fal-ai/flux-kontext/dev");
        let err =
            validate(dev, &json!({"prompt": "p", "image_url": "u", "num_inference_steps": 99, "acceleration": "max"}))
                .unwrap_err();
        let locs: Vec<&Value> = err.iter().map(|e| &e["loc"][1]).collect();
        assert_eq!(locs, [&json!("num_inference_steps"), &json!("acceleration")]);
        assert_eq!(err[0]["type"], "less_than_equal");
    }

    #[test]
    fn expected_rendering() {
        assert_eq!(expected(&["jpeg", "png"]), "'jpeg' or 'png'");
        assert_eq!(expected(&["a", "b", "c"]), "'a', 'b' or 'c'");
    }
}
