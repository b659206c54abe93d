//! Bytes in and out of fal: storage uploads (the initiate flow, fal-protocol.md §3.2) and
//! output downloads (from the CDN, never with the key, or from a `data:` URI).

use bytes::Bytes;
use reqwest::Method;
use reqwest::header::CONTENT_TYPE;
use serde::Deserialize;

use super::body::DOWNLOAD_LIMIT;
use super::client::{FalClient, SMALL_ANSWER};
use super::error::{Answerer, FalError};

/// A downloaded (or decoded) media file and the content type its server claimed.
#[derive(Debug, Clone)]
pub struct Media {
    pub bytes: Bytes,
    pub content_type: Option<String>,
}

impl FalClient {
    /// Uploads bytes to fal storage (the initiate flow, fal-protocol.md §3.2) and returns the
    /// public URL to put in `image_urls`.
    pub async fn upload(&self, bytes: Bytes, content_type: &str, file_name: &str) -> Result<String, FalError> {
        let mut initiate =
            self.config().rest_url.join("storage/upload/initiate").map_err(|e| FalError::Protocol(e.to_string()))?;
        initiate.query_pairs_mut().append_pair("storage_type", "fal-cdn-v3");
        let request = Bytes::from(
            serde_json::to_vec(&serde_json::json!({"content_type": content_type, "file_name": file_name}))
                .unwrap_or_default(),
        );
        #[derive(Deserialize)]
        struct Initiated {
            upload_url: String,
            file_url: String,
        }
        let initiated: Initiated = self
            .retrying(
                "starting an upload",
                || async {
                    let (_, body) = self
                        .call(
                            Method::POST,
                            &initiate,
                            Some((request.clone(), "application/json")),
                            true,
                            SMALL_ANSWER,
                            Answerer::Storage,
                        )
                        .await?;
                    serde_json::from_slice(&body)
                        .map_err(|e| FalError::Protocol(format!("the upload answer could not be read ({e})")))
                },
                FalError::is_retryable,
            )
            .await?;
        let put_url = self.parse_url(&initiated.upload_url)?;
        // A presigned URL: it carries its own authorisation, so the key is not sent.
        self.retrying(
            "uploading",
            || async {
                self.call(
                    Method::PUT,
                    &put_url,
                    Some((bytes.clone(), content_type)),
                    false,
                    SMALL_ANSWER,
                    Answerer::Storage,
                )
                .await
            },
            FalError::is_retryable,
        )
        .await?;
        Ok(initiated.file_url)
    }

    /// Fetches an output image: from a CDN URL (never with the key) or a `data:` URI.
    pub async fn download(&self, url: &str) -> Result<Media, FalError> {
        if let Some(rest) = url.strip_prefix("data:") {
            return decode_data_uri(rest);
        }
        // parse_url refuses schemes other than https (and http on this machine).
        let parsed = self.parse_url(url)?;
        let cdn = Answerer::Cdn { host: parsed.host_str().unwrap_or("?").to_string() };
        self.retrying(
            "downloading an image",
            || async {
                let (headers, body) =
                    self.call(Method::GET, &parsed, None, false, ("image", DOWNLOAD_LIMIT), cdn.clone()).await?;
                let content_type = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_string);
                Ok(Media { bytes: body, content_type })
            },
            // CDN GETs are idempotent: a server error there is worth another try too.
            |e| e.is_retryable() || matches!(e, FalError::Api(a) if a.status >= 500),
        )
        .await
    }
}

fn decode_data_uri(rest: &str) -> Result<Media, FalError> {
    use base64::Engine;
    let (meta, data) =
        rest.split_once(',').ok_or_else(|| FalError::Protocol("a data: URI without ',' in the result".into()))?;
    let content_type = meta.split(';').next().filter(|s| !s.is_empty()).map(str::to_string);
    if !meta.ends_with(";base64") {
        return Err(FalError::Protocol("a data: URI in the result is not base64".into()));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .map_err(|e| FalError::Protocol(format!("a data: URI in the result is not valid base64 ({e})")))?;
    Ok(Media { bytes: Bytes::from(bytes), content_type })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_uris_decode() {
        let m = decode_data_uri("image/png;base64,aGVsbG8=").unwrap();
        assert_eq!(&m.bytes[..], b"hello");
        assert_eq!(m.content_type.as_deref(), Some("image/png"));
        assert!(decode_data_uri("image/png,raw").is_err());
    }
}
