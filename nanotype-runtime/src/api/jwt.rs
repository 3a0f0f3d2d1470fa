//! [`Jwt`]: the policy of an app with users. A bearer token is a JSON Web Token from the app's
//! identity provider (or Cloudflare Access), checked before any data is read: its signature
//! (HS256 with a shared secret; RS256 or ES256 with the provider's public keys, a JWKS fetched
//! and cached, or given in a variable), its `exp` and `nbf`, and the `iss` and `aud` the app
//! names. Its claims say which rooms it may use (a claim holding room prefixes, `*` for every
//! room), and its subject and claims go into the room as the [`Caller`]: routes and validation
//! see who is writing.
//!
//! In a Worker the signature is checked by the platform's WebCrypto; natively by the RustCrypto
//! crates (`hmac`, `rsa`, `p256`).
//!
//! ```
//! use nanotype::api::Jwt;
//!
//! // Tokens signed with the `JWT_SECRET` secret, from `https://login.example.com/`, whose
//! // `rooms` claim lists the room prefixes they may use.
//! pub const USERS: Jwt = Jwt::hs256_from_var("JWT_SECRET")
//!     .issuer("https://login.example.com/")
//!     .rooms_claim("rooms");
//!
//! // Or the provider's public keys, fetched from its JWKS and cached.
//! pub const SSO: Jwt = Jwt::jwks_url("https://login.example.com/.well-known/jwks.json")
//!     .audience("tasks");
//! ```

use std::cell::RefCell;
use std::collections::HashMap;

use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Map, Value as Json};

use super::app::Caller;
use super::policy::{Access, Decision, Policy, RequestParts, Vars};

/// Seconds of clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY_S: i64 = 60;
/// How long a fetched key set is used before it is fetched again.
pub const JWKS_TTL_S: i64 = 600;
/// A key id the cached set lacks refetches it, at most this often.
const REFETCH_S: i64 = 60;

/// Where the keys come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Keys {
    /// HS256 with the secret in this variable.
    Secret(&'static str),
    /// RS256 / ES256 with the JWKS (JSON) in this variable.
    JwksVar(&'static str),
    /// RS256 / ES256 with the JWKS at this URL.
    JwksUrl(&'static str),
}

/// A policy that admits JSON Web Tokens ([module docs](self)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Jwt {
    keys: Keys,
    issuer: Option<&'static str>,
    audience: Option<&'static str>,
    rooms_claim: &'static str,
}

impl Jwt {
    const fn with(keys: Keys) -> Jwt {
        Jwt {
            keys,
            issuer: None,
            audience: None,
            rooms_claim: "rooms",
        }
    }

    /// HS256 tokens signed with the secret in the variable `var`.
    pub const fn hs256_from_var(var: &'static str) -> Jwt {
        Jwt::with(Keys::Secret(var))
    }

    /// RS256 or ES256 tokens signed by a key of the JWKS (`{"keys": [...]}`) in the variable
    /// `var`.
    pub const fn jwks_from_var(var: &'static str) -> Jwt {
        Jwt::with(Keys::JwksVar(var))
    }

    /// RS256 or ES256 tokens signed by a key of the JWKS at `url`, fetched when first needed and
    /// kept [`JWKS_TTL_S`]; a token naming a key the set lacks fetches it again (at most once a
    /// minute), so a provider's key rotation is picked up.
    pub const fn jwks_url(url: &'static str) -> Jwt {
        Jwt::with(Keys::JwksUrl(url))
    }

    /// Tokens must have this `iss`.
    pub const fn issuer(mut self, issuer: &'static str) -> Jwt {
        self.issuer = Some(issuer);
        self
    }

    /// Tokens must have this `aud` (or list it).
    pub const fn audience(mut self, audience: &'static str) -> Jwt {
        self.audience = Some(audience);
        self
    }

    /// The claim that lists the room prefixes a token may use (`rooms` by default): a string or
    /// an array of strings; `*` is every room.
    pub const fn rooms_claim(mut self, claim: &'static str) -> Jwt {
        self.rooms_claim = claim;
        self
    }

    /// The token's claims, when it is valid at `now_s` (seconds since the epoch); else why not.
    pub async fn verify(
        &self,
        token: &str,
        env: &dyn Vars,
        now_s: i64,
    ) -> Result<Map<String, Json>, String> {
        let mut parts = token.split('.');
        let (Some(head), Some(body), Some(sig), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("the token is not a JWT (three dot-separated parts)".into());
        };
        let header: Header = serde_json::from_slice(&b64(head)?)
            .map_err(|e| format!("the token's header is not valid JSON: {e}"))?;
        let claims: Map<String, Json> = serde_json::from_slice(&b64(body)?)
            .map_err(|_| "the token's claims are not a JSON object".to_owned())?;
        let signature = b64(sig)?;
        let signed = &token.as_bytes()[..head.len() + 1 + body.len()];
        let alg = Alg::parse(&header.alg)?;
        let verified = match (self.keys, alg) {
            (Keys::Secret(var), Alg::Hs256) => {
                let secret = env
                    .var(var)
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| format!("the secret `{var}` is not set"))?;
                crypto::verify_hs256(secret.as_bytes(), signed, &signature).await?
            }
            (Keys::JwksVar(_) | Keys::JwksUrl(_), Alg::Rs256 | Alg::Es256) => {
                let key = self.key(env, header.kid.as_deref(), alg, now_s).await?;
                crypto::verify_jwk(alg, &key, signed, &signature).await?
            }
            _ => {
                return Err(format!(
                    "`alg` {} is not what this app's keys sign with",
                    header.alg
                ))
            }
        };
        if !verified {
            return Err("the token's signature does not verify".into());
        }
        let time = |name: &str| claims.get(name).and_then(Json::as_i64);
        match time("exp") {
            Some(exp) if exp + LEEWAY_S < now_s => return Err("the token has expired".into()),
            Some(_) => {}
            None => return Err("the token has no `exp`".into()),
        }
        if time("nbf").is_some_and(|nbf| nbf - LEEWAY_S > now_s) {
            return Err("the token is not valid yet (`nbf`)".into());
        }
        if let Some(iss) = self.issuer {
            if claims.get("iss").and_then(Json::as_str) != Some(iss) {
                return Err(format!("the token's `iss` is not {iss}"));
            }
        }
        if let Some(aud) = self.audience {
            let ok = match claims.get("aud") {
                Some(Json::String(a)) => a == aud,
                Some(Json::Array(list)) => list.iter().any(|a| a.as_str() == Some(aud)),
                _ => false,
            };
            if !ok {
                return Err(format!("the token's `aud` does not include {aud}"));
            }
        }
        Ok(claims)
    }

    /// The public key for `kid` (or the only one of the algorithm's type).
    async fn key(
        &self,
        env: &dyn Vars,
        kid: Option<&str>,
        alg: Alg,
        now_s: i64,
    ) -> Result<Jwk, String> {
        let pick = |set: &[Jwk]| -> Option<Jwk> {
            let of_type = set.iter().filter(|k| k.kty == alg.kty());
            if let Some(kid) = kid {
                of_type
                    .into_iter()
                    .find(|k| k.kid.as_deref() == Some(kid))
                    .cloned()
            } else {
                let mut all = of_type;
                match (all.next(), all.next()) {
                    (Some(only), None) => Some(only.clone()),
                    _ => None,
                }
            }
        };
        let missing = || match kid {
            Some(kid) => format!("no key `{kid}` of type {} in the key set", alg.kty()),
            None => format!(
                "the token names no `kid` and the key set has not exactly one {} key",
                alg.kty()
            ),
        };
        match self.keys {
            Keys::JwksVar(var) => {
                let text = env
                    .var(var)
                    .ok_or_else(|| format!("the key set `{var}` is not set"))?;
                pick(&parse_jwks(&text)?).ok_or_else(missing)
            }
            Keys::JwksUrl(url) => {
                let cached = CACHE.with(|c| c.borrow().get(url).cloned());
                if let Some(entry) = &cached {
                    let fresh = now_s - entry.fetched_s < JWKS_TTL_S;
                    if let Some(key) = pick(&entry.keys).filter(|_| fresh) {
                        return Ok(key);
                    }
                    if fresh && now_s - entry.fetched_s < REFETCH_S {
                        return Err(missing());
                    }
                }
                let keys = parse_jwks(&crypto::fetch_text(url).await?)?;
                let key = pick(&keys);
                CACHE.with(|c| {
                    c.borrow_mut().insert(
                        url.to_owned(),
                        Cached {
                            keys,
                            fetched_s: now_s,
                        },
                    )
                });
                key.ok_or_else(missing)
            }
            Keys::Secret(_) => Err(missing()),
        }
    }
}

impl Jwt {
    /// The room prefixes the token's rooms claim lists.
    fn prefixes<'a>(&self, claims: &'a Map<String, Json>) -> Vec<&'a str> {
        match claims.get(self.rooms_claim) {
            Some(Json::String(p)) => vec![p.as_str()],
            Some(Json::Array(list)) => list.iter().filter_map(Json::as_str).collect(),
            _ => Vec::new(),
        }
    }
}

impl Policy for Jwt {
    /// The rooms the token's claim lists, as ranges of the replica's key (none for a token that
    /// does not verify).
    async fn visible_rooms(&self, req: &RequestParts, env: &dyn Vars) -> super::rooms::RoomScope {
        use super::rooms::RoomScope;
        let Some(token) = req.bearer_token() else {
            return RoomScope::Prefixes(Vec::new());
        };
        let Ok(claims) = self.verify(token, env, crypto::now_s()).await else {
            return RoomScope::Prefixes(Vec::new());
        };
        let prefixes = self.prefixes(&claims);
        if prefixes.contains(&"*") {
            return RoomScope::All;
        }
        RoomScope::Prefixes(prefixes.into_iter().map(str::to_owned).collect())
    }

    /// Allowed when the token verifies and its rooms claim covers the room; the caller is the
    /// token's `sub` with all its claims.
    async fn authorize(&self, req: &RequestParts, env: &dyn Vars, access: &Access<'_>) -> Decision {
        let Some(token) = req.bearer_token() else {
            return Decision::unauthorized("send `Authorization: Bearer <JWT>`");
        };
        let claims = match self.verify(token, env, crypto::now_s()).await {
            Ok(c) => c,
            Err(why) => return Decision::unauthorized(why),
        };
        let prefixes = self.prefixes(&claims);
        if !prefixes
            .iter()
            .any(|p| *p == "*" || access.room.starts_with(p))
        {
            return Decision::forbidden(format!(
                "the token's `{}` claim does not include room `{}`",
                self.rooms_claim, access.room
            ));
        }
        let subject = claims.get("sub").and_then(Json::as_str).map(str::to_owned);
        let caller = match subject {
            Some(s) => Caller::subject_of(s),
            None => Caller::anonymous(),
        };
        Decision::AllowAs(caller.with_claims(claims))
    }
}

thread_local! {
    /// Key sets fetched, by URL (a Worker isolate is single-threaded).
    static CACHE: RefCell<HashMap<String, Cached>> = RefCell::new(HashMap::new());
}

#[derive(Clone)]
struct Cached {
    keys: Vec<Jwk>,
    fetched_s: i64,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
}

/// The algorithms accepted: never `none`, never one the keys were not made for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Alg {
    Hs256,
    Rs256,
    Es256,
}

impl Alg {
    fn parse(alg: &str) -> Result<Alg, String> {
        match alg {
            "HS256" => Ok(Alg::Hs256),
            "RS256" => Ok(Alg::Rs256),
            "ES256" => Ok(Alg::Es256),
            other => Err(format!(
                "`alg` {other} is not accepted (HS256, RS256, ES256)"
            )),
        }
    }

    fn kty(self) -> &'static str {
        match self {
            Alg::Hs256 => "oct",
            Alg::Rs256 => "RSA",
            Alg::Es256 => "EC",
        }
    }
}

/// A public key of a JWKS, as its JSON says it.
#[derive(Clone, Debug, Deserialize, serde::Serialize)]
struct Jwk {
    kty: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    n: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    e: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    crv: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    x: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    y: Option<String>,
}

fn parse_jwks(text: &str) -> Result<Vec<Jwk>, String> {
    #[derive(Deserialize)]
    struct Set {
        keys: Vec<Jwk>,
    }
    serde_json::from_str::<Set>(text)
        .map(|s| s.keys)
        .map_err(|e| format!("the key set is not a JWKS: {e}"))
}

fn b64(part: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .map_err(|_| "the token is not base64url".to_owned())
}

#[cfg(all(not(target_arch = "wasm32"), feature = "native"))]
fn field<'a>(key: &'a Jwk, value: &'a Option<String>, name: &str) -> Result<Vec<u8>, String> {
    let text = value
        .as_deref()
        .ok_or_else(|| format!("the {} key lacks `{name}`", key.kty))?;
    b64(text)
}

/// Signature checks and fetches, by platform.
#[cfg(all(target_arch = "wasm32", feature = "worker"))]
mod crypto {
    use js_sys::{Object, Reflect, Uint8Array};
    use wasm_bindgen::{JsCast, JsValue};
    use wasm_bindgen_futures::JsFuture;

    use super::{Alg, Jwk};

    pub fn now_s() -> i64 {
        (js_sys::Date::now() / 1000.0) as i64
    }

    fn subtle() -> Result<JsValue, String> {
        let crypto = Reflect::get(&js_sys::global(), &"crypto".into()).map_err(text)?;
        Reflect::get(&crypto, &"subtle".into()).map_err(text)
    }

    fn text(e: JsValue) -> String {
        crate::worker::js_error_text(&e)
    }

    fn obj(pairs: &[(&str, JsValue)]) -> Result<Object, String> {
        let o = Object::new();
        for (k, v) in pairs {
            Reflect::set(&o, &(*k).into(), v).map_err(text)?;
        }
        Ok(o)
    }

    async fn call(method: &str, args: &[JsValue]) -> Result<JsValue, String> {
        let subtle = subtle()?;
        let f: js_sys::Function = Reflect::get(&subtle, &method.into())
            .map_err(text)?
            .dyn_into()
            .map_err(|_| format!("crypto.subtle.{method} is not a function"))?;
        let array = js_sys::Array::new();
        for a in args {
            array.push(a);
        }
        let promise: js_sys::Promise = f
            .apply(&subtle, &array)
            .map_err(text)?
            .dyn_into()
            .map_err(|_| format!("crypto.subtle.{method} returned no promise"))?;
        JsFuture::from(promise).await.map_err(text)
    }

    fn bytes(b: &[u8]) -> JsValue {
        Uint8Array::from(b).into()
    }

    pub async fn verify_hs256(secret: &[u8], data: &[u8], sig: &[u8]) -> Result<bool, String> {
        let algorithm = obj(&[("name", "HMAC".into()), ("hash", "SHA-256".into())])?;
        let usages = js_sys::Array::of1(&"verify".into());
        let key = call(
            "importKey",
            &[
                "raw".into(),
                bytes(secret),
                algorithm.clone().into(),
                false.into(),
                usages.into(),
            ],
        )
        .await?;
        let ok = call("verify", &[algorithm.into(), key, bytes(sig), bytes(data)]).await?;
        Ok(ok.as_bool() == Some(true))
    }

    pub async fn verify_jwk(alg: Alg, jwk: &Jwk, data: &[u8], sig: &[u8]) -> Result<bool, String> {
        let (import, verify) = match alg {
            Alg::Rs256 => {
                let a = obj(&[
                    ("name", "RSASSA-PKCS1-v1_5".into()),
                    ("hash", "SHA-256".into()),
                ])?;
                (a.clone(), a)
            }
            Alg::Es256 => (
                obj(&[("name", "ECDSA".into()), ("namedCurve", "P-256".into())])?,
                obj(&[("name", "ECDSA".into()), ("hash", "SHA-256".into())])?,
            ),
            Alg::Hs256 => return Err("HS256 takes a secret, not a public key".into()),
        };
        let json = serde_json::to_string(jwk).map_err(|e| e.to_string())?;
        let key_data = js_sys::JSON::parse(&json).map_err(text)?;
        let usages = js_sys::Array::of1(&"verify".into());
        let key = call(
            "importKey",
            &[
                "jwk".into(),
                key_data,
                import.into(),
                false.into(),
                usages.into(),
            ],
        )
        .await?;
        let ok = call("verify", &[verify.into(), key, bytes(sig), bytes(data)]).await?;
        Ok(ok.as_bool() == Some(true))
    }

    pub async fn fetch_text(url: &str) -> Result<String, String> {
        let url = url.parse().map_err(|e| format!("the key set's URL: {e}"))?;
        let mut resp = worker::Fetch::Url(url)
            .send()
            .await
            .map_err(|e| format!("fetching the key set: {e}"))?;
        if resp.status_code() != 200 {
            return Err(format!(
                "fetching the key set: status {}",
                resp.status_code()
            ));
        }
        resp.text()
            .await
            .map_err(|e| format!("reading the key set: {e}"))
    }
}

/// Signature checks by the RustCrypto crates, natively.
#[cfg(all(not(target_arch = "wasm32"), feature = "native"))]
mod crypto {
    use hmac::{Hmac, Mac};
    use sha2::Sha256;

    use super::{field, Alg, Jwk};

    pub fn now_s() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64)
    }

    pub async fn verify_hs256(secret: &[u8], data: &[u8], sig: &[u8]) -> Result<bool, String> {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|e| e.to_string())?;
        mac.update(data);
        Ok(mac.verify_slice(sig).is_ok())
    }

    pub async fn verify_jwk(alg: Alg, jwk: &Jwk, data: &[u8], sig: &[u8]) -> Result<bool, String> {
        match alg {
            Alg::Rs256 => {
                use rsa::pkcs1v15::{Signature, VerifyingKey};
                use rsa::signature::Verifier;
                let n = rsa::BigUint::from_bytes_be(&field(jwk, &jwk.n, "n")?);
                let e = rsa::BigUint::from_bytes_be(&field(jwk, &jwk.e, "e")?);
                let key = rsa::RsaPublicKey::new(n, e).map_err(|e| format!("the RSA key: {e}"))?;
                let Ok(sig) = Signature::try_from(sig) else {
                    return Ok(false);
                };
                Ok(VerifyingKey::<Sha256>::new(key).verify(data, &sig).is_ok())
            }
            Alg::Es256 => {
                use p256::ecdsa::signature::Verifier;
                use p256::ecdsa::{Signature, VerifyingKey};
                if jwk.crv.as_deref() != Some("P-256") {
                    return Err("an ES256 key is on curve P-256".into());
                }
                let (x, y) = (field(jwk, &jwk.x, "x")?, field(jwk, &jwk.y, "y")?);
                let point = p256::EncodedPoint::from_affine_coordinates(
                    x.as_slice().into(),
                    y.as_slice().into(),
                    false,
                );
                let key = VerifyingKey::from_encoded_point(&point)
                    .map_err(|e| format!("the EC key: {e}"))?;
                let Ok(sig) = Signature::from_slice(sig) else {
                    return Ok(false);
                };
                Ok(key.verify(data, &sig).is_ok())
            }
            Alg::Hs256 => Err("HS256 takes a secret, not a public key".into()),
        }
    }

    pub async fn fetch_text(url: &str) -> Result<String, String> {
        Err(format!(
            "fetching {url} needs the Worker; natively give the key set with Jwt::jwks_from_var"
        ))
    }
}

/// No platform to check signatures on: every token is refused.
#[cfg(not(any(
    all(target_arch = "wasm32", feature = "worker"),
    all(not(target_arch = "wasm32"), feature = "native")
)))]
mod crypto {
    use super::{Alg, Jwk};

    const NONE: &str = "this build checks no signatures (enable the `worker` or `native` feature)";

    pub fn now_s() -> i64 {
        0
    }
    pub async fn verify_hs256(_: &[u8], _: &[u8], _: &[u8]) -> Result<bool, String> {
        Err(NONE.into())
    }
    pub async fn verify_jwk(_: Alg, _: &Jwk, _: &[u8], _: &[u8]) -> Result<bool, String> {
        Err(NONE.into())
    }
    pub async fn fetch_text(_: &str) -> Result<String, String> {
        Err(NONE.into())
    }
}
