//! The Worker's `fetch`: [`serve`] runs the runtime's gateway ([`crate::host::gateway`]) with D1
//! as the replica and the room Durable Objects as the rooms.

use worker::{Env, Method, Request, RequestInit, Response, Result};

use super::http::{self, EnvVars};
use super::room::ROOM_BINDING;
use super::D1Replica;
use crate::api::{self, ApiError, Policy, Vars};
use crate::host::gateway::{self, GatewayPlatform, Outcome};
use crate::host::{HttpRequest, HttpResponse};
use crate::registry::Schema;
use crate::shard::ShardCache;

/// Serve `req` for the app's schema `S` under `policy`: the Worker's whole `fetch`.
///
/// ```ignore
/// #[worker::event(fetch)]
/// async fn fetch(req: worker::Request, env: worker::Env, _: worker::Context) -> worker::Result<worker::Response> {
///     nanotype::worker::serve::<App>(req, &env, &Tokens).await
/// }
/// ```
pub async fn serve<S: Schema>(
    mut req: Request,
    env: &Env,
    policy: &impl Policy,
) -> Result<Response> {
    let request = match http::request(&mut req).await {
        Ok(r) => r,
        Err(e) => return http::error(&e),
    };
    let platform = Worker {
        vars: EnvVars(env.clone()),
    };
    match gateway::serve::<S, _>(&platform, policy, &request).await {
        Outcome::Respond(resp) => http::response(&resp),
        Outcome::Upgrade { room } => match forward_upgrade(&req, env, &room).await {
            Ok(resp) => Ok(resp),
            Err(e) => http::error(&e),
        },
    }
}

/// The gateway's platform in a Worker.
struct Worker {
    vars: EnvVars,
}

impl GatewayPlatform for Worker {
    type Replica = D1Replica;

    fn replica(&self, shard: &str) -> std::result::Result<D1Replica, crate::Error> {
        D1Replica::from_env(&self.vars.0, shard)
    }

    fn shard_cache(&self) -> &ShardCache {
        // One per isolate: requests of one isolate run on its one thread.
        thread_local! {
            static CACHE: &'static ShardCache = Box::leak(Box::default());
        }
        CACHE.with(|c| *c)
    }

    fn vars(&self) -> &dyn Vars {
        &self.vars
    }

    async fn forward(
        &self,
        room: &str,
        req: HttpRequest,
    ) -> std::result::Result<HttpResponse, ApiError> {
        let inner = http::to_worker(&req).map_err(http::internal)?;
        let resp = fetch_room(&self.vars.0, room, inner).await?;
        http::from_worker(resp).await
    }
}

/// `inner` sent to the Durable Object of `room` (by name).
async fn fetch_room(
    env: &Env,
    room: &str,
    inner: Request,
) -> std::result::Result<Response, ApiError> {
    let unavailable = |e: worker::Error| ApiError::new(503, "room_unavailable", e.to_string());
    let stub = env
        .durable_object(ROOM_BINDING)
        .and_then(|ns| ns.get_by_name(room))
        .map_err(unavailable)?;
    stub.fetch_with_request(inner).await.map_err(unavailable)
}

/// A feed subscription, passed to the room's Durable Object with its upgrade headers; the
/// object's answer (the WebSocket) goes back as it is.
async fn forward_upgrade(
    req: &Request,
    env: &Env,
    room: &str,
) -> std::result::Result<Response, ApiError> {
    let url = req.url().map_err(http::internal)?;
    let headers = worker::Headers::new();
    for (k, v) in req.headers().entries() {
        let _ = headers.set(&k, &v);
    }
    let _ = headers.set(api::ROOM_HEADER, room);
    let mut init = RequestInit::new();
    init.with_method(Method::Get).with_headers(headers);
    let inner = Request::new_with_init(url.as_str(), &init).map_err(http::internal)?;
    fetch_room(env, room, inner).await
}
