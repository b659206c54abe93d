//! Validation of the Kontext multi input, reproducing pydantic v2 (lax mode) error items the way
//! fal reports them: `{"loc":["body",field,…],"msg","type","url","ctx"?,"input"}`.

use serde_json::{Map, Value, json};

pub(crate) const ASPECT_RATIOS: &[&str] = &[
    "21:9", "16:9", "4:3", "3:2", "1:1", "2:3", "3:4", "9:16", "9:21",
];
const OUTPUT_FORMATS: &[&str] = &["jpeg", "png"];
const SAFETY: &[&str] = &["1", "2", "3", "4", "5", "6"];

/// The validated, defaulted model input.
#[derive(Debug, Clone)]
pub(crate) struct KontextInput {
    pub prompt: String,
    pub image_urls: Vec<String>,
    pub seed: Option<u64>,
    pub guidance_scale: f64,
    pub sync_mode: bool,
    pub num_images: u32,
    pub output_format: String,
    pub safety_tolerance: String,
    pub enhance_prompt: bool,
    pub aspect_ratio: Option<String>,
}

/// One pydantic-style error item.
pub(crate) fn error_item(
    loc: &[Value],
    msg: &str,
    ty: &str,
    ctx: Option<Value>,
    input: &Value,
) -> Value {
    let mut full_loc = vec![json!("body")];
    full_loc.extend(loc.iter().cloned());
    let mut m = Map::new();
    m.insert("loc".into(), Value::Array(full_loc));
    m.insert("msg".into(), json!(msg));
    m.insert("type".into(), json!(ty));
    m.insert(
        "url".into(),
        json!(format!("https://docs.fal.ai/errors/#{ty}")),
    );
    if let Some(c) = ctx {
        m.insert("ctx".into(), c);
    }
    m.insert("input".into(), input.clone());
    Value::Object(m)
}

struct Errors(Vec<Value>);

impl Errors {
    fn push(&mut self, field: &str, msg: &str, ty: &str, ctx: Option<Value>, input: &Value) {
        self.0
            .push(error_item(&[json!(field)], msg, ty, ctx, input));
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
                    Err((
                        "int_from_float",
                        "Input should be a valid integer, got a number with a fractional part",
                    ))
                }
            } else {
                Err(("int_type", "Input should be a valid integer"))
            }
        }
        Value::String(s) => s.trim().parse::<i128>().map_err(|_| {
            (
                "int_parsing",
                "Input should be a valid integer, unable to parse string as an integer",
            )
        }),
        _ => Err(("int_type", "Input should be a valid integer")),
    }
}

fn as_float(v: &Value) -> Result<f64, (&'static str, &'static str)> {
    match v {
        Value::Number(n) => n
            .as_f64()
            .ok_or(("float_type", "Input should be a valid number")),
        Value::String(s) => s
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .ok_or((
                "float_parsing",
                "Input should be a valid number, unable to parse string as a number",
            )),
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
            _ => Err((
                "bool_parsing",
                "Input should be a valid boolean, unable to interpret input",
            )),
        },
        _ => Err(("bool_type", "Input should be a valid boolean")),
    }
}

/// A number for `ctx`, rendered as an integer when it is one (fal's docs show `{"le":20}`).
fn num(v: f64) -> Value {
    if v.fract() == 0.0 {
        json!(v as i64)
    } else {
        json!(v)
    }
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
            errs.push(
                field,
                &format!("Input should be {exp}"),
                "enum",
                Some(json!({ "expected": exp })),
                v,
            );
            None
        }
    }
}

/// Validates the raw JSON body; `Err` carries ALL error items (the 422 `detail` list).
pub(crate) fn validate(body: &Value) -> Result<KontextInput, Vec<Value>> {
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

    let prompt = match obj.get("prompt") {
        None => {
            errs.push("prompt", "Field required", "missing", None, body);
            None
        }
        Some(Value::String(s)) => Some(s.clone()),
        Some(v) => {
            errs.push(
                "prompt",
                "Input should be a valid string",
                "string_type",
                None,
                v,
            );
            None
        }
    };

    let image_urls = match obj.get("image_urls") {
        None => {
            errs.push("image_urls", "Field required", "missing", None, body);
            None
        }
        Some(Value::Array(items)) => {
            let mut urls = Vec::with_capacity(items.len());
            let mut ok = true;
            for (i, it) in items.iter().enumerate() {
                match it {
                    Value::String(s) => urls.push(s.clone()),
                    _ => {
                        ok = false;
                        errs.0.push(error_item(
                            &[json!("image_urls"), json!(i)],
                            "Input should be a valid string",
                            "string_type",
                            None,
                            it,
                        ));
                    }
                }
            }
            if items.is_empty() {
                ok = false;
                errs.push(
                    "image_urls",
                    "List should have at least 1 item after validation, not 0",
                    "too_short",
                    Some(json!({"field_type": "List", "min_length": 1, "actual_length": 0})),
                    &Value::Array(Vec::new()),
                );
            }
            ok.then_some(urls)
        }
        Some(v) => {
            errs.push(
                "image_urls",
                "Input should be a valid list",
                "list_type",
                None,
                v,
            );
            None
        }
    };

    let mut seed = None;
    if let Some(v) = obj.get("seed").filter(|v| !v.is_null()) {
        match as_int(v) {
            Ok(i) if i < 0 => errs.push(
                "seed",
                "Input should be greater than or equal to 0",
                "greater_than_equal",
                Some(json!({"ge": 0})),
                v,
            ),
            Ok(i) => match u64::try_from(i) {
                Ok(u) => seed = Some(u),
                Err(_) => errs.push(
                    "seed",
                    "Input should be a valid integer, unable to parse input as an integer",
                    "int_parsing",
                    None,
                    v,
                ),
            },
            Err((ty, msg)) => errs.push("seed", msg, ty, None, v),
        }
    }

    let mut guidance_scale = 3.5;
    if let Some(v) = obj.get("guidance_scale") {
        match as_float(v) {
            Ok(f) => {
                if range_check(&mut errs, "guidance_scale", f, 1.0, 20.0, v) {
                    guidance_scale = f;
                }
            }
            Err((ty, msg)) => errs.push("guidance_scale", msg, ty, None, v),
        }
    }

    let mut num_images = 1;
    if let Some(v) = obj.get("num_images") {
        match as_int(v) {
            Ok(i) => {
                if range_check(&mut errs, "num_images", i as f64, 1.0, 4.0, v) {
                    num_images = i as u32;
                }
            }
            Err((ty, msg)) => errs.push("num_images", msg, ty, None, v),
        }
    }

    let mut bools = [false, false];
    for (slot, field) in bools.iter_mut().zip(["sync_mode", "enhance_prompt"]) {
        if let Some(v) = obj.get(field) {
            match as_bool(v) {
                Ok(b) => *slot = b,
                Err((ty, msg)) => errs.push(field, msg, ty, None, v),
            }
        }
    }
    let [sync_mode, enhance_prompt] = bools;

    let output_format = match obj.get("output_format") {
        None => Some("jpeg".to_string()),
        Some(v) => enum_check(&mut errs, "output_format", v, OUTPUT_FORMATS),
    };
    let safety_tolerance = match obj.get("safety_tolerance") {
        None => Some("2".to_string()),
        Some(v) => enum_check(&mut errs, "safety_tolerance", v, SAFETY),
    };
    let aspect_ratio = match obj.get("aspect_ratio") {
        None | Some(Value::Null) => None,
        Some(v) => enum_check(&mut errs, "aspect_ratio", v, ASPECT_RATIOS),
    };

    if !errs.0.is_empty() {
        return Err(errs.0);
    }
    match (prompt, image_urls, output_format, safety_tolerance) {
        (Some(prompt), Some(image_urls), Some(output_format), Some(safety_tolerance)) => {
            Ok(KontextInput {
                prompt,
                image_urls,
                seed,
                guidance_scale,
                sync_mode,
                num_images,
                output_format,
                safety_tolerance,
                enhance_prompt,
                aspect_ratio,
            })
        }
        // Unreachable in practice: every `None` above pushed an error.
        _ => Err(vec![error_item(
            &[],
            "Invalid input",
            "value_error",
            None,
            body,
        )]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let v = validate(&json!({"prompt": "p", "image_urls": ["data:x"], "extra": 1})).unwrap();
        assert_eq!(v.num_images, 1);
        assert_eq!(v.output_format, "jpeg");
        assert_eq!(v.safety_tolerance, "2");
        assert!(v.aspect_ratio.is_none());
    }

    #[test]
    fn expected_rendering() {
        assert_eq!(expected(&["jpeg", "png"]), "'jpeg' or 'png'");
        assert_eq!(expected(&["a", "b", "c"]), "'a', 'b' or 'c'");
    }
}
