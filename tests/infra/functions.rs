//! The functions the handler defines (their `function.json`) against the API it serves: every
//! HTTP function routes to documented paths, every documented path has a function, and every
//! timer has code.

use serde_json::Value;

/// Paths the handler's router serves that are not in the OpenAPI document itself.
const ROUTER_ONLY_PATHS: &[&str] = &[
    "/api/openapi.json",
    handler::docs::PATHS[0],
    handler::docs::PATHS[1],
    handler::docs::PATHS[2],
    handler::docs::PATHS[3],
];

/// The host's `extensions.http.routePrefix`.
const ROUTE_PREFIX: &str = "/api";

enum Trigger {
    /// The literal first segment of the route template.
    Http {
        route: String,
        first_segment: String,
    },
    Timer,
}

fn trigger_of(name: &str, function_json: &str) -> Trigger {
    let json: Value = serde_json::from_str(function_json)
        .unwrap_or_else(|error| panic!("{name}/function.json is not JSON: {error}"));
    let bindings = json["bindings"]
        .as_array()
        .unwrap_or_else(|| panic!("{name}/function.json has no bindings array"));
    let trigger = bindings
        .iter()
        .find(|binding| binding["direction"] == "in")
        .unwrap_or_else(|| panic!("{name}/function.json has no trigger binding"));
    match trigger["type"].as_str() {
        Some("timerTrigger") => Trigger::Timer,
        Some("httpTrigger") => {
            // The host defaults the route to the function name.
            let route = trigger["route"].as_str().unwrap_or(name).to_owned();
            let first_segment = first_literal_segment(&route);
            Trigger::Http {
                route,
                first_segment,
            }
        }
        other => panic!("{name}/function.json has an unexpected trigger {other:?}"),
    }
}

/// `auth/{*rest}` → `auth`; `{area:regex(^admin$)}/{*rest}` → `admin` (the form that serves
/// `/api/admin/...` although the host reserves routes starting with `admin`).
fn first_literal_segment(route: &str) -> String {
    let segment = route.split('/').next().unwrap_or_default();
    match segment
        .strip_prefix('{')
        .and_then(|inner| inner.split_once(":regex(^"))
        .and_then(|(_, pattern)| pattern.strip_suffix("$)}"))
    {
        Some(literal) => literal.to_owned(),
        None => segment.to_owned(),
    }
}

/// Whether a function whose route starts with `first_segment` receives `path`.
fn covers(first_segment: &str, path: &str) -> bool {
    let Some(rest) = path
        .strip_prefix(ROUTE_PREFIX)
        .and_then(|rest| rest.strip_prefix('/'))
    else {
        return false;
    };
    !first_segment.is_empty()
        && !first_segment.contains(['{', '}'])
        && (rest == first_segment || rest.starts_with(&format!("{first_segment}/")))
}

fn served_paths() -> Vec<String> {
    handler::openapi()
        .paths
        .paths
        .keys()
        .cloned()
        .chain(ROUTER_ONLY_PATHS.iter().map(|path| (*path).to_owned()))
        .collect()
}

#[test]
fn every_function_routes_to_served_paths_or_is_a_timer_with_code() {
    let paths = served_paths();
    let timers: Vec<&str> = handler::timer_functions().map(|timer| timer.name).collect();
    let mut problems = Vec::new();

    for function in handler::functions() {
        match trigger_of(function.name, function.function_json) {
            Trigger::Http {
                route,
                first_segment,
            } => {
                if !paths.iter().any(|path| covers(&first_segment, path)) {
                    problems.push(format!(
                        "{}: route `{route}` matches no path the handler serves",
                        function.name
                    ));
                }
            }
            Trigger::Timer => {
                if !timers.contains(&function.name) {
                    problems.push(format!(
                        "{}: timer function without code in handler::timer_functions()",
                        function.name
                    ));
                }
            }
        }
    }

    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_served_path_is_reachable_through_a_function() {
    let routes: Vec<String> = handler::functions()
        .filter_map(
            |function| match trigger_of(function.name, function.function_json) {
                Trigger::Http { first_segment, .. } => Some(first_segment),
                Trigger::Timer => None,
            },
        )
        .collect();

    let unreachable: Vec<String> = served_paths()
        .into_iter()
        .filter(|path| !routes.iter().any(|segment| covers(segment, path)))
        .collect();

    assert!(
        unreachable.is_empty(),
        "no function.json routes these paths in Azure: {unreachable:?}"
    );
}

#[test]
fn no_function_route_starts_with_a_word_the_host_reserves() {
    for function in handler::functions() {
        if let Trigger::Http { route, .. } = trigger_of(function.name, function.function_json) {
            let lower = route.to_ascii_lowercase();
            assert!(
                !lower.starts_with("admin") && !lower.starts_with("runtime"),
                "{}: route `{route}` would be disabled by the host (built-in routes)",
                function.name
            );
        }
    }
}

#[test]
fn route_templates_yield_their_first_literal_segment() {
    let cases = [
        ("auth/{*rest}", "auth"),
        ("{area:regex(^admin$)}/{*rest}", "admin"),
        ("openapi.json", "openapi.json"),
        ("health/{*rest}", "health"),
        ("{*path}", "{*path}"),
    ];
    for (route, expected) in cases {
        assert_eq!(first_literal_segment(route), expected, "route {route}");
    }
}

#[test]
fn a_route_segment_covers_its_paths_only() {
    let cases = [
        ("auth", "/api/auth/login", true),
        ("auth", "/api/auth", true),
        ("auth", "/api/authors", false),
        ("auth", "/auth/login", false),
        ("admin", "/api/admin/users/{id}", true),
        ("openapi.json", "/api/openapi.json", true),
        ("{*path}", "/api/anything", false),
    ];
    for (segment, path, expected) in cases {
        assert_eq!(covers(segment, path), expected, "{segment} covers {path}");
    }
}
