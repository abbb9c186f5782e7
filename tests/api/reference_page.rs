//! `/api/docs`: the interactive API reference, served from assets embedded at build time from
//! the npm package `swagger-ui-dist`, under a policy that lets the page load only from its own
//! origin.

use std::io::Read;
use std::path::Path;

use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap};

use crate::helpers::spawn_app;

fn swagger_ui_file(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../functions/handler/docs/node_modules/swagger-ui-dist")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

fn header(headers: &HeaderMap, name: header::HeaderName) -> &str {
    headers
        .get(&name)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_else(|| panic!("no {name} header"))
}

#[tokio::test]
async fn the_reference_page_loads_only_from_its_own_origin() {
    let app = spawn_app().await;

    let page = app.get("/api/docs", None).await;
    assert_eq!(page.status(), StatusCode::OK);
    let headers = page.headers().clone();
    assert_eq!(
        header(&headers, header::CONTENT_TYPE),
        "text/html; charset=utf-8"
    );
    let policy = header(&headers, header::CONTENT_SECURITY_POLICY);
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(policy.contains(directive), "{directive} in {policy}");
    }
    let html = page.text().await.unwrap();
    // Every script and stylesheet is one of ours, by path: no CDN, no other host.
    let sources: Vec<&str> = html
        .split(['"', '\''])
        .filter(|part| part.ends_with(".js") || part.ends_with(".css"))
        .collect();
    assert_eq!(
        sources,
        [
            "/api/docs/swagger-ui.css",
            "/api/docs/swagger-ui-bundle.js",
            "/api/docs/init.js"
        ]
    );
    assert!(
        !html.contains("http:") && !html.contains("https:"),
        "{html}"
    );

    let init = app.get("/api/docs/init.js", None).await;
    assert_eq!(init.status(), StatusCode::OK);
    let init = init.text().await.unwrap();
    assert!(init.contains("url: \"/api/openapi.json\""), "{init}");
    assert!(init.contains("validatorUrl: null"), "{init}");
}

#[tokio::test]
async fn swagger_ui_is_the_pinned_packages_own_files_gzipped_or_not() {
    let app = spawn_app().await;
    let client = reqwest::Client::builder().no_gzip().build().unwrap();

    for (name, content_type) in [
        ("swagger-ui-bundle.js", "text/javascript; charset=utf-8"),
        ("swagger-ui.css", "text/css; charset=utf-8"),
    ] {
        let expected = swagger_ui_file(name);
        let url = app.url(&format!("/api/docs/{name}"));

        let gzipped = client
            .get(&url)
            .header(header::ACCEPT_ENCODING, "br;q=1, gzip;q=0.8")
            .send()
            .await
            .unwrap();
        assert_eq!(gzipped.status(), StatusCode::OK);
        let headers = gzipped.headers().clone();
        assert_eq!(header(&headers, header::CONTENT_ENCODING), "gzip");
        assert_eq!(header(&headers, header::CONTENT_TYPE), content_type);
        assert_eq!(header(&headers, header::VARY), "accept-encoding");
        assert!(header(&headers, header::CACHE_CONTROL).starts_with("public"));
        let compressed = gzipped.bytes().await.unwrap();
        assert!(
            compressed.len() < expected.len() / 2,
            "{name} is compressed"
        );
        let mut inflated = Vec::new();
        flate2::read::GzDecoder::new(&compressed[..])
            .read_to_end(&mut inflated)
            .unwrap();
        assert!(inflated == expected, "{name}: gzip of the package's file");

        let etag = header(&headers, header::ETAG).to_owned();
        let again = client
            .get(&url)
            .header(header::ACCEPT_ENCODING, "gzip")
            .header(header::IF_NONE_MATCH, &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);

        // A client that takes no gzip (or refuses it) gets the file itself, with another tag.
        for accept in [None, Some("gzip;q=0, identity")] {
            let mut request = client.get(&url);
            if let Some(accept) = accept {
                request = request.header(header::ACCEPT_ENCODING, accept);
            }
            let plain = request.send().await.unwrap();
            assert_eq!(plain.status(), StatusCode::OK);
            assert!(plain.headers().get(header::CONTENT_ENCODING).is_none());
            assert_ne!(header(plain.headers(), header::ETAG), etag);
            assert!(plain.bytes().await.unwrap() == expected, "{name} as is");
        }
    }
}
