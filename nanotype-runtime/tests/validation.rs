//! Validation on the table: every write of a `validate` table goes through its `Validate`
//! impl, whether it comes from the gateway or from app code's typed functions, and sees who is
//! writing (the policy's caller). A whole app on the native host.

use nanotype::api::{
    Access, ApiError, AppRequest, Caller, Decision, Policy, Reply, RequestParts, RoomCtx,
    RoomHooks, Router, Vars,
};
use nanotype::native::TestApp;
use nanotype::{Validate, WriteCtx};
use serde_json::{json, Value};

#[nanotype::table(name = "notes", validate)]
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Note {
    #[nanotype(primary_key)]
    pub id: i64,
    pub text: String,
    #[nanotype(default = "")]
    #[serde(default)]
    pub author: String,
    #[serde(default)]
    pub at: i64,
}

impl Validate for Note {
    fn validate(&mut self, write: &WriteCtx<'_>) -> Result<(), ApiError> {
        if self.text.trim().is_empty() {
            return Err(ApiError::rejected("`text` is empty"));
        }
        self.author = write.caller().subject().unwrap_or("nobody").to_owned();
        self.at = write.now_ms();
        Ok(())
    }
}

nanotype::schema!(Notes = [Note]);

/// `Bearer user:<name>` is that user.
struct Users;

impl Policy for Users {
    async fn authorize(&self, req: &RequestParts, _: &dyn Vars, _: &Access<'_>) -> Decision {
        match req.bearer_token().and_then(|t| t.strip_prefix("user:")) {
            Some(name) => Decision::AllowAs(Caller::subject_of(name)),
            None => Decision::unauthorized("send `Bearer user:<name>`"),
        }
    }
}

/// `POST /rooms/{room}/quick/:text`: a note written by app code, through the typed function.
async fn quick(room: RoomCtx, req: AppRequest) -> Result<Reply, ApiError> {
    let note = Note {
        id: 0,
        text: req.param("text").unwrap_or_default().replace('_', " "),
        author: "forged".into(),
        at: 0,
    };
    let stored = Note::insert(room.db(), &note)?;
    Ok(Reply::json(
        201,
        json!({ "row": stored.text, "author": stored.author }),
    ))
}

#[derive(Default)]
struct Hooks;

impl RoomHooks for Hooks {
    fn routes(self: std::rc::Rc<Self>) -> Router {
        Router::new().post("quick/:text", quick)
    }
}

fn app(user: &str) -> TestApp<Notes, Hooks, Users> {
    TestApp::new(Users).unwrap().token(&format!("user:{user}"))
}

#[test]
fn the_gateway_and_app_code_both_validate_and_see_the_caller() {
    let ana = app("ana");
    let made = ana.post(
        "/rooms/r/notes",
        json!({"text": "hello", "author": "someone else"}),
    );
    assert_eq!(made.status, 201, "{}", made.json_body());
    let row = &made.json_body()["row"];
    assert_eq!(
        (row["author"].as_str(), row["at"].as_i64()),
        (Some("ana"), Some(ana.now_ms())),
        "stamped by the table's validation, whatever the client sent"
    );
    let empty = ana.post("/rooms/r/notes", json!({"text": "  "}));
    assert_eq!(
        (empty.status, empty.json_body()["error"]["code"].as_str()),
        (400, Some("rejected"))
    );
    // A patch is validated too.
    let patched = ana.call("PATCH", "/rooms/r/notes/1", json!({"text": ""}));
    assert_eq!(patched.status, 400);

    // App code's typed write: validated the same way, with the caller of the request.
    let quick = ana.post("/rooms/r/quick/from_code", Value::Null);
    assert_eq!(quick.status, 201, "{}", quick.json_body());
    assert_eq!(quick.json_body()["author"], "ana");
    let blank = ana.post("/rooms/r/quick/_", Value::Null);
    assert_eq!(
        (blank.status, blank.json_body()["error"]["code"].as_str()),
        (400, Some("rejected")),
        "{}",
        blank.json_body()
    );

    // What was refused was not written: two notes.
    let all = ana.get("/rooms/r/notes?consistency=strong").json_body();
    let texts: Vec<&str> = all["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["hello", "from code"]);
}
