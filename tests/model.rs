//! The request model against the seed doc: golden serialization, validation of every field, and
//! lenient-but-strict parsing of every response shape in fal-protocol.md.

use kontext::model::*;
use serde_json::{Value, json};

/// The seed doc's Input Example, verbatim.
const SEED_DOC_INPUT_EXAMPLE: &str = r#"{
  "prompt": "Put the little duckling on top of the woman's t-shirt.",
  "guidance_scale": 3.5,
  "sync_mode": false,
  "num_images": 1,
  "output_format": "jpeg",
  "safety_tolerance": "2",
  "enhance_prompt": false,
  "image_urls": [
    "https://v3.fal.media/files/penguin/XoW0qavfF-ahg-jX4BMyL_image.webp",
    "https://v3.fal.media/files/tiger/bml6YA7DWJXOigadvxk75_image.webp"
  ]
}"#;

fn example_draft() -> Draft {
    Draft {
        prompt: "Put the little duckling on top of the woman's t-shirt.".into(),
        images: vec![
            "https://v3.fal.media/files/penguin/XoW0qavfF-ahg-jX4BMyL_image.webp".into(),
            "https://v3.fal.media/files/tiger/bml6YA7DWJXOigadvxk75_image.webp".into(),
        ],
        ..Draft::default()
    }
}

fn wire(draft: &Draft) -> KontextInput {
    let valid = draft.validate(MAX_INPUT_IMAGES).expect("valid");
    let urls = draft.images.clone();
    valid.to_wire(urls)
}

#[test]
fn golden_seed_doc_input_example() {
    let sent = serde_json::to_value(wire(&example_draft())).unwrap();
    let expected: Value = serde_json::from_str(SEED_DOC_INPUT_EXAMPLE).unwrap();
    assert_eq!(sent, expected);
    // The text form too: the tolerance is a JSON string and no optional field appears.
    let text = serde_json::to_string(&wire(&example_draft())).unwrap();
    assert!(text.contains(r#""safety_tolerance":"2""#), "{text}");
    assert!(!text.contains("seed") && !text.contains("aspect_ratio"), "{text}");
}

#[test]
fn optional_fields_appear_when_set() {
    let d = example_draft()
        .with("seed", "18446744073709551615")
        .with("aspect_ratio", "16:9")
        .with("safety_tolerance", "6")
        .with("output_format", "PNG");
    let v = serde_json::to_value(wire(&d)).unwrap();
    assert_eq!(v["seed"], json!(18446744073709551615u64));
    assert_eq!(v["aspect_ratio"], json!("16:9"));
    assert_eq!(v["safety_tolerance"], json!("6"));
    assert_eq!(v["output_format"], json!("png"));
    // And it reads back to the same value.
    let back: KontextInput = serde_json::from_value(v).unwrap();
    assert_eq!(back, wire(&d));
}

#[test]
fn a_draft_is_stored_as_one_flat_map_and_read_back() {
    let d = example_draft().with("seed", "9").with("enhance_prompt", "true").with("num_inference_steps", "30");
    let stored = serde_json::to_value(&d).unwrap();
    assert_eq!(stored["seed"], json!("9"));
    assert_eq!(stored["num_inference_steps"], json!("30"), "no separate map for other fields");
    let back: Draft = serde_json::from_value(stored).unwrap();
    assert_eq!(back, d);
}

#[test]
fn validation_reports_every_problem_at_once_with_field_names() {
    let d = Draft { prompt: "   ".into(), images: vec![], ..Draft::default() }
        .with("seed", "-1")
        .with("guidance_scale", "25")
        .with("num_images", "5")
        .with("output_format", "gif")
        .with("safety_tolerance", "7")
        .with("aspect_ratio", "5:4");
    let errors = d.validate(4).unwrap_err();
    let fields: Vec<Field> = errors.0.iter().map(|e| e.field).collect();
    assert_eq!(
        fields,
        vec![
            Field::Prompt,
            Field::ImageUrls(None),
            Field::Seed,
            Field::GuidanceScale,
            Field::NumImages,
            Field::OutputFormat,
            Field::SafetyTolerance,
            Field::AspectRatio
        ]
    );
    let text = errors.to_string();
    assert!(text.contains("guidance_scale must be between 1 and 20, got 25"), "{text}");
    assert!(text.contains("num_images must be between 1 and 4, got 5"), "{text}");
    assert!(text.contains("safety_tolerance must be one of 1, 2, 3, 4, 5, 6"), "{text}");
    assert!(text.contains("aspect_ratio must be one of 21:9"), "{text}");
}

#[test]
fn numbers_at_the_edges() {
    for (g, ok) in [("1", true), ("20", true), ("0.99", false), ("20.01", false), ("NaN", false), ("inf", false)] {
        let d = example_draft().with("guidance_scale", g);
        assert_eq!(d.validate(4).is_ok(), ok, "guidance {g}");
    }
    for (n, ok) in [("1", true), ("4", true), ("0", false), ("2.5", false)] {
        let d = example_draft().with("num_images", n);
        assert_eq!(d.validate(4).is_ok(), ok, "num_images {n}");
    }
    let d = example_draft().with("aspect_ratio", "auto");
    assert_eq!(d.validate(4).unwrap().get("aspect_ratio"), None);
}

#[test]
fn image_references_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("in.png");
    image::RgbImage::new(2, 2).save(&png).unwrap();
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "hello").unwrap();

    let d = Draft {
        prompt: "x".into(),
        images: vec![
            png.display().to_string(),
            dir.path().join("missing.png").display().to_string(),
            text.display().to_string(),
            "https://".into(),
            "data:text/plain;base64,aGk=".into(),
        ],
        ..Draft::default()
    };
    let errors = d.validate_with(10, kontext::runner::check_local_image).unwrap_err();
    let by_index: Vec<_> = errors.0.iter().map(|e| (e.field, e.message.clone())).collect();
    assert_eq!(by_index.len(), 4, "{by_index:?}");
    assert!(matches!(by_index[0].0, Field::ImageUrls(Some(1))) && by_index[0].1.contains("no such file"));
    assert!(matches!(by_index[1].0, Field::ImageUrls(Some(2))) && by_index[1].1.contains("not an image"));
    assert!(matches!(by_index[2].0, Field::ImageUrls(Some(3))));
    assert!(matches!(by_index[3].0, Field::ImageUrls(Some(4))) && by_index[3].1.contains("data:image"));

    let too_many = Draft { images: vec![png.display().to_string(); 5], ..example_draft() };
    let err = too_many.validate(4).unwrap_err().to_string();
    assert!(err.contains("at most 4 input images"), "{err}");

    let valid =
        Draft { images: vec![png.display().to_string(), format!("file://{}", png.display())], ..example_draft() };
    let v = valid.validate_with(4, kontext::runner::check_local_image).unwrap();
    assert_eq!(v.images, vec![ImageSource::Local(png.clone()), ImageSource::Local(png)]);
}

#[test]
fn output_parsing_is_strict_where_it_matters() {
    let good = json!({
        "images": [{"url": "https://v3.fal.media/files/tiger/abc.jpg", "width": 1024, "height": 768, "content_type": "image/jpeg"}],
        "timings": {"inference": 6.81},
        "seed": 15860307465884635512u64,
        "has_nsfw_concepts": [false],
        "prompt": "p",
        "unknown_field": {"kept": true}
    });
    let out: KontextOutput = serde_json::from_value(good.clone()).unwrap();
    assert_eq!(out.seed, 15860307465884635512);
    assert_eq!(out.inference_seconds(), Some(6.81));
    assert_eq!(out.extra["unknown_field"], json!({"kept": true}));
    // Round trip keeps every field fal sent.
    assert_eq!(serde_json::to_value(&out).unwrap(), good);

    // timings of any shape, and image fields other than url optional.
    let lenient = json!({"images": [{"url": "u"}], "timings": {}, "seed": 1, "has_nsfw_concepts": [], "prompt": ""});
    assert!(serde_json::from_value::<KontextOutput>(lenient).is_ok());

    for broken in [
        json!({"images": [{"width": 1}], "timings": {}, "seed": 1, "has_nsfw_concepts": [false], "prompt": ""}),
        json!({"images": [{"url": "u", "width": "wide"}], "timings": {}, "seed": 1, "has_nsfw_concepts": [false], "prompt": ""}),
        json!({"images": [], "timings": {}, "seed": -1, "has_nsfw_concepts": [], "prompt": ""}),
        json!({"images": [], "timings": {}, "seed": 1.5, "has_nsfw_concepts": [], "prompt": ""}),
        json!({"images": [], "timings": {}, "seed": 1, "has_nsfw_concepts": ["no"], "prompt": ""}),
        json!({"images": [], "timings": {}, "seed": 1, "has_nsfw_concepts": []}),
    ] {
        assert!(serde_json::from_value::<KontextOutput>(broken.clone()).is_err(), "{broken}");
    }
}

#[test]
fn every_status_shape_in_the_protocol_notes_parses() {
    let shapes = [
        r#"{"status":"IN_QUEUE","request_id":"r","queue_position":2,"response_url":"u","status_url":"s","cancel_url":"c","logs":null}"#,
        r#"{"status":"IN_QUEUE","request_id":"r","queue_position":0}"#,
        r#"{"status":"IN_PROGRESS","request_id":"r","logs":[{"timestamp":"2024-12-20T15:37:17.120314","message":"INFO:TRYON:Preprocessing images...","labels":{}}],"metrics":{}}"#,
        r#"{"status":"IN_PROGRESS","logs":[{"message":"m","level":"STDERR","source":"USER","timestamp":"t"}]}"#,
        r#"{"status":"IN_PROGRESS","logs":[{"message":"m","timestamp":"t","labels":{"level":"INFO","source":"USER"}}]}"#,
        r#"{"status":"IN_PROGRESS","logs":[{"message":"m","timestamp":"t"}]}"#,
        r#"{"status":"COMPLETED","request_id":"r","logs":[],"metrics":{"inference_time":3.42}}"#,
        r#"{"status":"COMPLETED","request_id":"r","logs":[],"metrics":{},"error":"Request timed out","error_type":"request_timeout"}"#,
        r#"{"status":"COMPLETED"}"#,
        r#"{"status":"CANCELLATION_REQUESTED"}"#,
    ];
    for s in shapes {
        let st: QueueStatus = serde_json::from_str(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        if let Some(logs) = &st.logs {
            assert!(logs.iter().all(|l| l.message == "m" || l.message.starts_with("INFO")), "{s}");
        }
    }
    let labelled: QueueStatus = serde_json::from_str(shapes[4]).unwrap();
    assert_eq!(labelled.logs.unwrap()[0].level.as_deref(), Some("INFO"));
    let top: QueueStatus = serde_json::from_str(shapes[3]).unwrap();
    assert_eq!(top.logs.unwrap()[0].source.as_deref(), Some("USER"));
    let odd: QueueStatus = serde_json::from_str(shapes[9]).unwrap();
    assert_eq!(odd.status, StatusKind::Other("CANCELLATION_REQUESTED".into()));
    let failed: QueueStatus = serde_json::from_str(shapes[7]).unwrap();
    assert_eq!(failed.error_type.as_deref(), Some("request_timeout"));

    let submit: SubmitResponse = serde_json::from_str(
        r#"{"status":"IN_QUEUE","request_id":"30bc","response_url":"https://queue.fal.run/fal-ai/flux-pro/requests/30bc","status_url":"https://queue.fal.run/fal-ai/flux-pro/requests/30bc/status","cancel_url":"https://queue.fal.run/fal-ai/flux-pro/requests/30bc/cancel","queue_position":0}"#,
    )
    .unwrap();
    assert_eq!(submit.queue_position, Some(0));
}
