//! The OpenAPI 3.1 document served at `/openapi.json`.
//!
//! Written by hand from [`ROUTES`], the list of routes the router is built from; a test
//! checks that every route is documented with its methods and nothing else is.

use serde_json::{json, Value};
use shared_logic::registry::{self, catalog};

/// One route: method and path template.
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
}

/// Every route the server answers (the OpenAPI document is built from this list).
pub const ROUTES: &[Route] = &[
    Route {
        method: "get",
        path: "/v1/metrics",
    },
    Route {
        method: "get",
        path: "/v1/metrics/{metric}",
    },
    Route {
        method: "get",
        path: "/v1/lineage",
    },
    Route {
        method: "get",
        path: "/v1/quality",
    },
    Route {
        method: "post",
        path: "/v1/events",
    },
    Route {
        method: "put",
        path: "/v1/admin/speed",
    },
    Route {
        method: "get",
        path: "/healthz",
    },
    Route {
        method: "get",
        path: "/readyz",
    },
    Route {
        method: "get",
        path: "/metrics",
    },
    Route {
        method: "get",
        path: "/openapi.json",
    },
    Route {
        method: "get",
        path: "/",
    },
    Route {
        method: "get",
        path: "/assets/app.js",
    },
    Route {
        method: "get",
        path: "/assets/style.css",
    },
];

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    })
}

fn query_param(name: &str, description: &str, schema: Value) -> Value {
    json!({"name": name, "in": "query", "required": false, "description": description, "schema": schema})
}

/// What the server parses as a time (`shared_logic::instant::parse_instant`): epoch
/// milliseconds or RFC 3339 with a time zone.
const INSTANT_PATTERN: &str = "^([0-9]{1,16}|[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2}))$";

/// The schema of a time parameter: never empty, RFC 3339 (`date-time`) or epoch ms.
fn instant_schema() -> Value {
    json!({
        "type": "string",
        "minLength": 1,
        "maxLength": 64,
        "pattern": INSTANT_PATTERN,
        "anyOf": [
            {"format": "date-time"},
            {"pattern": "^[0-9]{1,16}$", "description": "epoch milliseconds"}
        ],
        "examples": ["2026-01-01T00:00:00Z", "1767225600000"]
    })
}

fn operation(path: &str, method: &str) -> Value {
    let query_security = json!([{"queryToken": []}, {}]);
    match (path, method) {
        ("/v1/metrics", "get") => json!({
            "summary": "The metrics, their dimensions and values",
            "security": query_security,
            "responses": {"200": {"description": "The catalogue", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Catalog"}}}},
                          "401": error_response("Missing or wrong token")}
        }),
        ("/v1/metrics/{metric}", "get") => {
            let metrics: Vec<&str> = catalog().iter().map(|m| m.name).collect();
            json!({
                "summary": "One metric over a time range, batch and real-time views merged",
                "description": "Windows starting in [from, to), aligned to the granularity. Each hour is answered by exactly one layer (batch where its coverage map covers the hour, speed otherwise); rollups merge states and then derive values.",
                "security": query_security,
                "parameters": [
                    {"name": "metric", "in": "path", "required": true, "schema": {"type": "string", "enum": metrics}},
                    query_param("from", "Start (RFC 3339 or epoch ms); default `to` minus one hour", instant_schema()),
                    query_param("to", "End, exclusive (RFC 3339 or epoch ms); default now", instant_schema()),
                    query_param("granularity", "Output window size; `all` is one window over the whole range (in whole hours): totals; `sliding` the metric's configured sliding window (`--sliding-window`), a window of its size starting every slide", json!({"type": "string", "enum": ["minute", "hour", "day", "all", "sliding"], "default": "minute"})),
                    query_param("group_by", "Comma-separated dimensions to keep; the others are merged away", json!({"type": "string"})),
                    query_param("filter", "Comma-separated `dimension:value` pairs", json!({"type": "string"})),
                    query_param("limit", "Most rows returned", json!({"type": "integer", "minimum": 1})),
                    query_param("as_of_version", "Time travel: answer from this version of the metric's batch views table (`lambda views history`); speed views are not read", json!({"type": "integer", "minimum": 0})),
                    query_param("as_of_time", "Time travel: answer from the batch views as published at this time (RFC 3339 or epoch ms); speed views are not read", instant_schema())
                ],
                "responses": {
                    "200": {"description": "Rows", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/MetricAnswer"}}}},
                    "400": error_response("A bad parameter"),
                    "401": error_response("Missing or wrong token"),
                    "503": error_response("A layer the answer needs cannot be reached")
                }
            })
        }
        ("/v1/lineage", "get") => json!({
            "summary": "Which layer answers a window, and from what",
            "security": query_security,
            "parameters": [
                {"name": "metric", "in": "query", "required": true, "description": "Metric name",
                 "schema": {"type": "string", "enum": registry::NAMES}},
                {"name": "window", "in": "query", "required": true, "description": "Any time inside the window (RFC 3339 or epoch ms)",
                 "schema": instant_schema()},
                query_param("as_of_version", "Lineage as of this version of the metric's batch views table", json!({"type": "integer", "minimum": 0})),
                query_param("as_of_time", "Lineage as of the batch views published at this time", instant_schema())
            ],
            "responses": {"200": {"description": "Lineage", "content": {"application/json": {"schema": {"type": "object"}}}},
                          "400": error_response("A bad parameter"), "401": error_response("Missing or wrong token")}
        }),
        ("/v1/quality", "get") => json!({
            "summary": "The data-quality report: figures and rule outcomes per producer and hour",
            "description": "The `quality` metric merged per producer and hour (batch where it covers the hour, speed otherwise), each hour judged by the server's quality rules (duplicates, completeness, delay_p99, volume against the same hour of earlier weeks or the hours before, freshness) into pass, warn or fail. Each producer hour the speed layer still holds also has `arrival` (events out of order and late, marked `layer: speed`) and `dead_letter_samples` (the first rejected records per reason); `speed_notes_missing` says why they are absent when no speed instance answered.",
            "security": query_security,
            "parameters": [
                query_param("from", "First hour (floored to the hour; default 24 hours before `to`)", instant_schema()),
                query_param("to", "End of the range (rounded up to the hour; default the end of the current hour)", instant_schema()),
                query_param("granularity", "`minute`: each producer's windows judged too, as `windows` (ranges of at most 48 hours)", json!({"type": "string", "enum": ["hour", "minute"], "default": "hour"}))
            ],
            "responses": {"200": {"description": "The report", "content": {"application/json": {"schema": {"type": "object", "required": ["from", "to", "verdict", "rules", "hours"]}}}},
                          "400": error_response("A bad parameter"), "401": error_response("Missing or wrong token")}
        }),
        ("/v1/events", "post") => json!({
            "summary": "Collect events (JSON array or NDJSON)",
            "description": "Valid events are produced to the events topic (idempotent, acks=all, keyed by user_id); invalid ones to the dead-letter topic. Accepted means acknowledged by Kafka.",
            "security": [{"ingestToken": []}, {}],
            "requestBody": {"required": true, "content": {
                "application/json": {"schema": {"type": "array", "items": {"$ref": "#/components/schemas/Event"}}},
                "application/x-ndjson": {"schema": {"type": "string"}}
            }},
            "responses": {
                "200": {"description": "Counts and the reasons by line", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/IngestReport"}}}},
                "400": error_response("An empty or unsplittable body"),
                "401": error_response("Missing or wrong token"),
                "413": error_response("Body over the limit"),
                "415": error_response("A Content-Encoding other than identity (unsupported_encoding)"),
                "429": {
                    "description": "Over the client's rate (per ingest token, or per address when ingest takes no token)",
                    "headers": {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer", "minimum": 1}}},
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
                },
                "503": error_response("Kafka did not acknowledge every record; retry")
            }
        }),
        ("/v1/admin/speed", "put") => json!({
            "summary": "Switch the real-time views to other speed instances (a replayed views version)",
            "description": "Atomic: every query answers from the old instances until all the new ones answer their status; then from the new ones only.",
            "security": [{"adminToken": []}],
            "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["speed_urls"], "properties": {
                "speed_urls": {"type": "array", "items": {"type": "string", "format": "uri"}},
                "timeout_ms": {"type": "integer"}}}}}},
            "responses": {
                "200": {"description": "Switched: previous and current instances, and their status", "content": {"application/json": {"schema": {"type": "object"}}}},
                "400": error_response("A bad body"),
                "401": error_response("No credentials (whether or not admin routes are enabled), or a wrong token"),
                "403": error_response("A token was given but admin routes are disabled (no admin token configured)"),
                "503": error_response("A new instance does not answer; nothing switched")
            }
        }),
        ("/healthz", "get") => {
            json!({"summary": "Liveness", "responses": {"200": {"description": "Alive"}}})
        }
        ("/readyz", "get") => json!({"summary": "Readiness: views loaded", "responses": {
            "200": {"description": "Ready", "content": {"application/json": {"schema": {"type": "object"}}}},
            "503": {"description": "Not ready; `{\"ready\": false}`, with the reasons only for callers with the query token", "content": {"application/json": {"schema": {"type": "object"}}}}}}),
        ("/metrics", "get") => {
            json!({"summary": "Prometheus metrics", "responses": {"200": {"description": "Text exposition format 0.0.4; speed instance URLs only for callers with the query token", "content": {"text/plain": {"schema": {"type": "string"}}}}}})
        }
        ("/openapi.json", "get") => {
            json!({"summary": "This document", "responses": {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {"schema": {"type": "object"}}}}}})
        }
        ("/", "get") => {
            json!({"summary": "The live dashboard", "responses": {"200": {"description": "HTML page", "content": {"text/html": {"schema": {"type": "string"}}}}}})
        }
        ("/assets/app.js", "get") => {
            json!({"summary": "Dashboard script", "responses": {"200": {"description": "JavaScript", "content": {"text/javascript": {"schema": {"type": "string"}}}}}})
        }
        ("/assets/style.css", "get") => {
            json!({"summary": "Dashboard style", "responses": {"200": {"description": "CSS", "content": {"text/css": {"schema": {"type": "string"}}}}}})
        }
        _ => json!({"summary": path, "responses": {"200": {"description": "OK"}}}),
    }
}

/// The document.
pub fn document() -> Value {
    let mut paths = serde_json::Map::new();
    for route in ROUTES {
        let entry = paths
            .entry(route.path.to_string())
            .or_insert_with(|| json!({}));
        entry[route.method] = operation(route.path, route.method);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "lambda serving API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Metrics merged from batch and real-time views, the event collector, and the dashboard."
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "queryToken": {"type": "http", "scheme": "bearer", "description": "Required for query routes when the server has a query token"},
                "ingestToken": {"type": "http", "scheme": "bearer", "description": "Required for POST /v1/events when the server has ingest tokens (one per client)"},
                "adminToken": {"type": "http", "scheme": "bearer", "description": "Required for the admin routes, which are disabled without one (callers without credentials get 401 either way)"}
            },
            "schemas": {
                "Error": {"type": "object", "required": ["code", "message"], "properties": {
                    "code": {"type": "string", "description": "Stable machine-readable code"},
                    "message": {"type": "string"}}},
                "Catalog": {"type": "object", "properties": {"metrics": {"type": "array", "items": {"type": "object", "properties": {
                    "name": {"type": "string"}, "dimensions": {"type": "array", "items": {"type": "string"}},
                    "values": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}, "kind": {"type": "string", "enum": ["count", "money", "ratio"]}}}}}}}}},
                "Row": {"type": "object", "required": ["window_start", "window_end", "dimensions", "values", "source", "final"], "properties": {
                    "window_start": {"type": "string", "format": "date-time"},
                    "window_end": {"type": "string", "format": "date-time"},
                    "dimensions": {"type": "object", "additionalProperties": {"type": "string"}},
                    "values": {"type": "object", "additionalProperties": {"type": ["number", "null"]}},
                    "source": {"type": "string", "enum": ["batch", "speed", "batch+speed"]},
                    "final": {"type": "boolean"}}},
                "MetricAnswer": {"type": "object", "properties": {
                    "metric": {"type": "string"}, "from": {"type": "string"}, "to": {"type": "string"},
                    "granularity": {"type": "string"}, "group_by": {"type": "array", "items": {"type": "string"}},
                    "filters": {"type": "object", "additionalProperties": {"type": "string"}},
                    "currency": {"type": "string"},
                    "time_boundary": {"type": ["string", "null"], "description": "End of the latest contiguous batch-covered hour"},
                    "watermark": {"type": ["string", "null"]},
                    "newest_event_time": {"type": ["string", "null"]},
                    "freshness_ms": {"type": ["integer", "null"], "description": "Age of the newest event in the real-time view; null when the answer read none (every hour batch-covered)"},
                    "manifest_version": {"type": ["integer", "null"]},
                    "rows": {"type": "array", "items": {"$ref": "#/components/schemas/Row"}},
                    "truncated": {"type": "boolean"}}},
                "Event": {"type": "object", "description": "See docs/events-and-metrics.md", "properties": {
                    "event_id": {"type": "string"}, "event_type": {"type": "string", "enum": ["page_view", "add_to_cart", "purchase"]},
                    "event_time": {"type": "string"}, "user_id": {"type": "string"}}},
                "IngestReport": {"type": "object", "properties": {
                    "accepted": {"type": "integer"}, "rejected": {"type": "integer"},
                    "errors": {"type": "array", "items": {"type": "object", "properties": {
                        "line": {"type": "integer"}, "reason": {"type": "string"}, "message": {"type": "string"}}}}}}
            }
        }
    })
}
