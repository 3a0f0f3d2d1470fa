//! The tasks app's OpenAPI description, read as a client would (`GET /_nanotype/openapi.json`
//! through the gateway), checked against what the app's routes really do. Schemathesis drives
//! the same document against the Worker in local workerd (scripts/e2e.sh).

use nanotype::api::RoomTokens;
use nanotype::host::HttpRequest;
use nanotype::native::TestApp;
use serde_json::{json, Value};
use tasks_example::schema::App;
use tasks_example::{TaskHooks, TOKENS};

type Tasks = TestApp<App, TaskHooks, RoomTokens>;

fn app() -> Tasks {
    TestApp::new(TOKENS)
        .unwrap()
        .var("API_TOKENS", "t-all=*,t-a=alpha-")
        .token("t-all")
}

fn get(e: &Tasks, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut req = HttpRequest::new("GET", path);
    if let Some(t) = token {
        req = req.with_header("authorization", &format!("Bearer {t}"));
    }
    let resp = e.request(req);
    (resp.status, resp.json_body())
}

/// The document is behind the policy: no token or an unknown one is a 401; a token limited to
/// some rooms reads it (it holds no data).
#[test]
fn the_description_is_served_to_callers_the_policy_knows() {
    let e = app();
    assert_eq!(get(&e, "/_nanotype/openapi.json", None).0, 401);
    assert_eq!(get(&e, "/_nanotype/openapi.json", Some("nope")).0, 401);
    let (status, doc) = get(&e, "/_nanotype/openapi.json", Some("t-a"));
    assert_eq!(status, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    let put = e.request(
        HttpRequest::new("PUT", "/_nanotype/openapi.json")
            .with_header("authorization", "Bearer t-all"),
    );
    assert_eq!(put.status, 405);
    assert_eq!(put.header("allow"), Some("GET, HEAD"));
}

/// What a body needs is what the body parser needs: the assigned key is left out of a create,
/// fields with a default, an `Option` or serde's default are optional, anything else required;
/// a create that sends only the required fields is accepted, and one without them is refused.
#[test]
fn bodies_say_what_a_write_needs() {
    let e = app();
    let (_, doc) = get(&e, "/_nanotype/openapi.json", Some("t-all"));
    let schemas = &doc["components"]["schemas"];
    assert_eq!(schemas["TaskCreate"]["required"], json!(["title"]));
    assert!(schemas["TaskCreate"]["properties"].get("id").is_none());
    assert_eq!(
        schemas["TaskCreate"]["properties"]["status"]["default"],
        "open"
    );
    assert_eq!(
        schemas["TaskCreate"]["properties"]["assignee"]["type"],
        json!(["string", "null"])
    );
    assert_eq!(
        schemas["Task"]["properties"]["id"]["maximum"],
        json!((1_i64 << 53) - 1)
    );
    assert_eq!(
        schemas["CommentCreate"]["required"],
        json!(["task_id", "body"])
    );
    assert_eq!(schemas["TaskPatch"]["required"], json!([]));
    assert_eq!(schemas["TaskCreate"]["additionalProperties"], false);

    let create = |path: &str, body: Value| {
        e.request(
            HttpRequest::new("POST", path)
                .with_header("authorization", "Bearer t-all")
                .with_header("content-type", "application/json")
                .with_body(body.to_string()),
        )
    };
    let task = create(
        "/rooms/doc-1/tasks",
        json!({ "title": "only what is required" }),
    );
    assert_eq!(task.status, 201);
    let id = task.json_body()["row"]["id"].clone();
    assert_eq!(
        create(
            "/rooms/doc-1/comments",
            json!({ "task_id": id, "body": "hi" })
        )
        .status,
        201
    );
    assert_eq!(
        create("/rooms/doc-1/comments", json!({ "body": "no task" })).status,
        400
    );
}

/// Every path of the document is a route of the app (no 404 for the path itself), every table
/// has its collection and item paths with their operations, and a create links to the row's
/// get, patch and delete with the key taken from the answer's row.
#[test]
fn every_described_path_is_a_route_and_every_table_is_described() {
    let e = app();
    let (_, doc) = get(&e, "/_nanotype/openapi.json", Some("t-all"));
    let paths = doc["paths"].as_object().unwrap();
    for (path, ops) in paths {
        // The room, then every key field as `1` (a valid integer and a valid text key).
        let concrete: String = path
            .replace("{room}", "doc-2")
            .split('/')
            .map(|seg| if seg.starts_with('{') { "1" } else { seg })
            .collect::<Vec<_>>()
            .join("/");
        for method in ops.as_object().unwrap().keys() {
            let route = nanotype::api::route::route::<App>(&method.to_uppercase(), &concrete);
            assert!(route.is_ok(), "{method} {path}: {:?}", route.err());
        }
    }
    for table in ["tasks", "comments"] {
        let list = &paths[&format!("/rooms/{{room}}/{table}")];
        assert!(
            list["get"].is_object() && list["post"].is_object(),
            "{table}"
        );
        let item = &paths[&format!("/rooms/{{room}}/{table}/{{id}}")];
        for op in ["get", "put", "patch", "delete"] {
            assert!(item[op].is_object(), "{table} {op}");
        }
        assert!(
            paths[&format!("/_across/{table}")]["get"].is_object(),
            "{table} across"
        );
    }
    // The page across rooms answers what its description requires.
    let across = &paths["/_across/tasks"]["get"];
    let names: Vec<&str> = across["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert!(
        names.contains(&"status") && names.contains(&"after"),
        "{names:?}"
    );
    let required = &across["responses"]["200"]["content"]["application/json"]["schema"]["required"];
    let (status, page) = get(&e, "/_across/tasks?limit=1", Some("t-all"));
    assert_eq!(status, 200, "{page}");
    for field in required.as_array().unwrap() {
        assert!(
            page.get(field.as_str().unwrap()).is_some(),
            "{field} in {page}"
        );
    }
    let links = &paths["/rooms/{room}/tasks"]["post"]["responses"]["201"]["links"];
    assert_eq!(links["getTask"]["operationId"], "getTask");
    assert_eq!(
        links["getTask"]["parameters"]["id"],
        "$response.body#/row/id"
    );
    let filters: Vec<&str> = paths["/rooms/{room}/tasks"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert!(filters.contains(&"status"), "{filters:?}");
    assert!(
        !filters.contains(&"title"),
        "title has no index: {filters:?}"
    );
    // Every status an operation lists is a real error response of the document.
    let responses = doc["components"]["responses"].as_object().unwrap();
    for r in ["400", "401", "403", "404", "405", "409", "503"] {
        assert!(responses.contains_key(r), "{r}");
    }
}

/// What Schemathesis found, kept fixed: a malformed `x-nanotype-seq` is a 400 even when `seq=`
/// is also sent (it was ignored on a row's read), a negative seq is a 400, a read across rooms
/// without credentials is a 401 whatever its query, `_sync` takes only
/// `rows`, and `_move` takes only `to`, as JSON.
#[test]
fn the_fuzzers_findings_stay_fixed() {
    let e = app();
    let created = e.post("/rooms/fz-1/tasks", json!({ "title": "t" }));
    assert_eq!(created.status, 201);
    let send = |method: &str, path: &str, headers: &[(&str, &str)], body: Option<&str>| {
        let mut req = HttpRequest::new(method, path).with_header("authorization", "Bearer t-all");
        for (k, v) in headers {
            req = req.with_header(k, v);
        }
        if let Some(b) = body {
            req = req.with_body(b);
        }
        e.request(req).status
    };
    for path in [
        "/rooms/fz-1/tasks/1?consistency=replica&seq=0",
        "/rooms/fz-1/tasks?seq=0",
    ] {
        assert_eq!(
            send("GET", path, &[("x-nanotype-seq", "{}")], None),
            400,
            "{path}"
        );
        assert_eq!(send("GET", path, &[], None), 200, "{path}");
    }
    assert_eq!(send("GET", "/rooms/fz-1/tasks/1?seq=-5", &[], None), 400);
    // A read across rooms asks who before what: a malformed query without credentials is a 401
    // (it was a 400, which told an anonymous caller about the query).
    let malformed = "/_across/tasks?after=&status=";
    assert_eq!(send("GET", malformed, &[], None), 400);
    assert_eq!(e.request(HttpRequest::new("GET", malformed)).status, 401);
    assert_eq!(send("GET", "/rooms/fz-1/_sync?rows=yes", &[], None), 400);
    assert_eq!(send("GET", "/rooms/fz-1/_sync?other=1", &[], None), 400);
    assert_eq!(send("GET", "/rooms/fz-1/_sync?rows=1", &[], None), 200);
    let json = [("content-type", "application/json")];
    assert_eq!(
        send(
            "POST",
            "/rooms/fz-1/_move",
            &json,
            Some(r#"{"to":"DB","x":1}"#)
        ),
        400
    );
    assert_eq!(
        send(
            "POST",
            "/rooms/fz-1/_move",
            &[("content-type", "text/plain")],
            Some(r#"{"to":"DB"}"#)
        ),
        415
    );
    assert_eq!(
        send("POST", "/rooms/fz-1/_move", &json, Some(r#"{"to":"DB"}"#)),
        200,
        "already there"
    );
}
