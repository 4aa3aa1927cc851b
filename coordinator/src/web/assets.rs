//! Scripts, styles and map data, embedded in the binary and served under `/assets/`: the
//! coordinator's own (`coordinator/web/static/`) and the vendored libraries and world atlas
//! (`coordinator/web/vendor/`, pinned in its `MANIFEST`; `fetch.sh --check` verifies them
//! against npm). Nothing is fetched from anywhere else.

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Every asset: path under `/assets/`, content type, bytes.
pub const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "app.css",
        "text/css; charset=utf-8",
        include_bytes!("../../web/static/app.css"),
    ),
    (
        "map.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../web/static/map.js"),
    ),
    (
        "incidents.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../web/static/incidents.js"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_bytes!("../../web/static/favicon.svg"),
    ),
    (
        "vendor/internmap.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../web/vendor/internmap.min.js"),
    ),
    (
        "vendor/d3-array.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../web/vendor/d3-array.min.js"),
    ),
    (
        "vendor/d3-geo.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../web/vendor/d3-geo.min.js"),
    ),
    (
        "vendor/topojson-client.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../web/vendor/topojson-client.min.js"),
    ),
    (
        "vendor/countries-110m.json",
        "application/json",
        include_bytes!("../../web/vendor/countries-110m.json"),
    ),
];

/// The vendored files' manifest (`sha256 size file package@version` per line).
pub const MANIFEST: &str = include_str!("../../web/vendor/MANIFEST");

/// A strong validator for an asset: the first 16 bytes of its SHA-256.
fn etag(bytes: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, bytes);
    format!("\"{}\"", crate::store::users::hex(&d.as_ref()[..16]))
}

/// `GET /assets/{path}`. Cached for an hour and revalidated by `ETag` (names carry no
/// version, so an upgraded coordinator's assets reach browsers within the hour).
pub async fn serve(Path(path): Path<String>, headers: HeaderMap) -> Response {
    let Some((_, content_type, bytes)) = ASSETS.iter().find(|(p, _, _)| *p == path) else {
        return (StatusCode::NOT_FOUND, "no such asset\n").into_response();
    };
    let tag = etag(bytes);
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag));
    let mut res = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, *content_type)], *bytes).into_response()
    };
    let h = res.headers_mut();
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    if let Ok(v) = HeaderValue::from_str(&tag) {
        h.insert(header::ETAG, v);
    }
    res
}
