//! What an app file usually needs, in one import: `use nanotype::prelude::*;`.
//!
//! ```
//! use nanotype::prelude::*;
//!
//! async fn hello(room: RoomCtx, _req: AppRequest) -> Result<Reply, ApiError> {
//!     Ok(Reply::json(200, json!({ "room": room.name() })))
//! }
//! let _routes = Router::new().get("hello", hello);
//! ```

pub use crate::api::{
    ApiError, AppRequest, Caller, Decision, Jwt, Policy, Reply, RoomCtx, RoomHooks, RoomTokens,
    Router, WriteOp,
};
pub use crate::feed::FeedConfig;
pub use crate::{json, Database, Primary, Validate, Value, WriteCtx};
