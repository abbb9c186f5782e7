//! `GET /api/docs`: the API's interactive reference. Swagger UI, embedded at build time from the
//! npm package `swagger-ui-dist` (`build.rs`), reads `/api/openapi.json`; nothing comes from a
//! CDN, and the page's Content-Security-Policy lets it load only from this origin.

use std::sync::OnceLock;

use axum::Router;
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use platform::{AppState, http_cache};

/// The reference's paths, besides the document it reads.
pub const PATHS: [&str; 4] = [
    "/api/docs",
    "/api/docs/init.js",
    "/api/docs/swagger-ui-bundle.js",
    "/api/docs/swagger-ui.css",
];

const PAGE: &str = include_str!("index.html");
const INIT: &str = include_str!("init.js");
static BUNDLE: Gzipped = Gzipped::new(
    include_bytes!(concat!(env!("OUT_DIR"), "/swagger-ui-bundle.js.gz")),
    "text/javascript; charset=utf-8",
);
static STYLES: Gzipped = Gzipped::new(
    include_bytes!(concat!(env!("OUT_DIR"), "/swagger-ui.css.gz")),
    "text/css; charset=utf-8",
);

/// Only this origin's scripts, styles, images and API; Swagger UI sets some inline styles.
const PAGE_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; font-src 'self' data:; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";
/// The page and its script change with a deploy: browsers and CDNs keep them a few minutes.
const PAGE_CACHE: &str = "public, max-age=300";
/// Swagger UI changes only with its pinned version: an hour, then revalidated by ETag.
const ASSET_CACHE: &str = "public, max-age=3600";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/docs", get(page))
        .route(
            "/api/docs/init.js",
            get(|| async { text(INIT, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/api/docs/swagger-ui-bundle.js",
            get(|headers: HeaderMap| async move { BUNDLE.answer(&headers) }),
        )
        .route(
            "/api/docs/swagger-ui.css",
            get(|headers: HeaderMap| async move { STYLES.answer(&headers) }),
        )
}

async fn page() -> Response {
    let mut response = text(PAGE, "text/html; charset=utf-8");
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PAGE_POLICY),
    );
    response
}

fn text(body: &'static str, content_type: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, PAGE_CACHE),
        ],
        body,
    )
        .into_response()
}

/// A file stored gzipped: sent as is to clients that accept gzip (every browser), inflated for
/// the rest.
struct Gzipped {
    bytes: &'static [u8],
    content_type: &'static str,
    /// Its strong ETag, computed on first use.
    etag: OnceLock<HeaderValue>,
}

impl Gzipped {
    const fn new(bytes: &'static [u8], content_type: &'static str) -> Self {
        Self {
            bytes,
            content_type,
            etag: OnceLock::new(),
        }
    }

    fn answer(&self, request: &HeaderMap) -> Response {
        let headers = [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(self.content_type),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static(ASSET_CACHE)),
            (header::VARY, HeaderValue::from_static("accept-encoding")),
        ];
        if accepts_gzip(request) {
            let etag = self
                .etag
                .get_or_init(|| http_cache::strong_etag(self.bytes))
                .clone();
            let encoding = (header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            return (headers, [encoding, (header::ETAG, etag)], self.bytes).into_response();
        }
        let mut inflated = Vec::new();
        let mut decoder = flate2::read::GzDecoder::new(self.bytes);
        match std::io::Read::read_to_end(&mut decoder, &mut inflated) {
            Ok(_) => (headers, inflated).into_response(),
            Err(error) => platform::Error::from(anyhow::Error::new(error)).into_response(),
        }
    }
}

/// Whether `Accept-Encoding` lists gzip (or `*`) without refusing it with `q=0`.
fn accepts_gzip(request: &HeaderMap) -> bool {
    request
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or_default();
            let refused = parts.any(|parameter| {
                parameter
                    .strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
}
