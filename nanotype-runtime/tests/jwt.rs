//! The JWT policy with tokens signed here: HS256 with a secret, RS256 and ES256 with a JWKS;
//! what a valid token may do (its rooms claim), what every kind of bad token gets (401, never
//! a served request), and that the caller reaches the room. The key in `tests/keys` is a test
//! key, made for these tests only.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use nanotype::api::{
    Access, ApiError, AppRequest, Decision, Jwt, Operation, Policy, Reply, RequestParts, RoomCtx,
    RoomHooks, Router,
};
use nanotype::native::TestApp;
use p256::ecdsa::signature::Signer;
use rsa::pkcs8::DecodePrivateKey;
use rsa::traits::PublicKeyParts;
use serde_json::{json, Value};
use sha2::Sha256;

const SECRET: &str = "a test secret of some length";
const RSA_PEM: &str = include_str!("keys/rsa-test.pem");

fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn signed_part(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}",
        B64.encode(header.to_string()),
        B64.encode(claims.to_string())
    )
}

fn hs256(claims: &Value) -> String {
    let data = signed_part(&json!({"alg": "HS256", "typ": "JWT"}), claims);
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(data.as_bytes());
    format!("{data}.{}", B64.encode(mac.finalize().into_bytes()))
}

fn rsa_key() -> rsa::RsaPrivateKey {
    rsa::RsaPrivateKey::from_pkcs8_pem(RSA_PEM).unwrap()
}

fn rs256(kid: &str, claims: &Value) -> String {
    let data = signed_part(&json!({"alg": "RS256", "kid": kid}), claims);
    let key = rsa::pkcs1v15::SigningKey::<Sha256>::new(rsa_key());
    let sig: rsa::pkcs1v15::Signature = key.sign(data.as_bytes());
    format!("{data}.{}", B64.encode(Box::<[u8]>::from(sig)))
}

fn ec_key() -> p256::ecdsa::SigningKey {
    p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).unwrap()
}

fn es256(kid: &str, claims: &Value) -> String {
    let data = signed_part(&json!({"alg": "ES256", "kid": kid}), claims);
    let sig: p256::ecdsa::Signature = ec_key().sign(data.as_bytes());
    format!("{data}.{}", B64.encode(sig.to_bytes()))
}

fn jwks() -> String {
    let rsa = rsa_key().to_public_key();
    let point = ec_key().verifying_key().to_encoded_point(false);
    json!({"keys": [
        {"kty": "RSA", "kid": "r1", "n": B64.encode(rsa.n().to_bytes_be()), "e": B64.encode(rsa.e().to_bytes_be())},
        {"kty": "EC", "kid": "e1", "crv": "P-256", "x": B64.encode(point.x().unwrap()), "y": B64.encode(point.y().unwrap())},
    ]})
    .to_string()
}

fn claims(sub: &str, rooms: Value) -> Value {
    json!({"sub": sub, "rooms": rooms, "exp": now_s() + 600, "iss": "https://login.test/", "aud": ["tasks"]})
}

fn decide(policy: &Jwt, token: &str, room: &str) -> Decision {
    let req = RequestParts {
        headers: vec![("authorization".into(), format!("Bearer {token}"))],
        ..RequestParts::default()
    };
    let vars = |name: &str| match name {
        "JWT_SECRET" => Some(SECRET.to_owned()),
        "JWKS" => Some(jwks()),
        _ => None,
    };
    let access = Access {
        room,
        table: Some("notes"),
        operation: Operation::Read,
    };
    pollster::block_on(policy.authorize(&req, &vars, &access))
}

const HS: Jwt = Jwt::hs256_from_var("JWT_SECRET")
    .issuer("https://login.test/")
    .audience("tasks");
const KEYS: Jwt = Jwt::jwks_from_var("JWKS");

#[test]
fn valid_tokens_of_each_algorithm_are_allowed_in_their_rooms_as_their_subject() {
    for (policy, token) in [
        (HS, hs256(&claims("ana", json!(["team-a-"])))),
        (KEYS, rs256("r1", &claims("ana", json!(["team-a-"])))),
        (KEYS, es256("e1", &claims("ana", json!("team-a-")))),
    ] {
        match decide(&policy, &token, "team-a-1") {
            Decision::AllowAs(caller) => {
                assert_eq!(caller.subject(), Some("ana"));
                assert_eq!(caller.claim("iss"), Some(&json!("https://login.test/")));
            }
            other => panic!("{other:?}"),
        }
        assert!(
            matches!(decide(&policy, &token, "team-b-1"), Decision::Forbidden(_)),
            "another team's room is 403"
        );
    }
    let everywhere = hs256(&claims("root", json!("*")));
    assert!(matches!(
        decide(&HS, &everywhere, "any"),
        Decision::AllowAs(_)
    ));
}

#[test]
fn every_bad_token_is_a_401_that_says_why() {
    let good = claims("ana", json!("*"));
    let mut expired = good.clone();
    expired["exp"] = json!(now_s() - 3_600);
    let mut early = good.clone();
    early["nbf"] = json!(now_s() + 3_600);
    let mut no_exp = good.clone();
    no_exp.as_object_mut().unwrap().remove("exp");
    let mut other_iss = good.clone();
    other_iss["iss"] = json!("https://evil.test/");
    let mut other_aud = good.clone();
    other_aud["aud"] = json!("billing");
    let valid = hs256(&good);
    let (data, _) = valid.rsplit_once('.').unwrap();
    let tampered = {
        let forged = signed_part(&json!({"alg": "HS256"}), &claims("mallory", json!("*")));
        format!("{forged}.{}", valid.rsplit_once('.').unwrap().1)
    };
    let unsigned = format!(
        "{}.",
        signed_part(&json!({"alg": "none"}), &claims("mallory", json!("*")))
    );
    // A public key's algorithm offered to the secret's policy, and the other way round.
    let rs_to_hs = rs256("r1", &good);
    let hs_to_keys = valid.clone();
    let cases: Vec<(&str, Jwt, String, &str)> = vec![
        ("expired", HS, hs256(&expired), "expired"),
        ("not yet valid", HS, hs256(&early), "nbf"),
        ("without exp", HS, hs256(&no_exp), "exp"),
        ("another issuer", HS, hs256(&other_iss), "iss"),
        ("another audience", HS, hs256(&other_aud), "aud"),
        ("tampered claims", HS, tampered, "signature"),
        ("alg none", HS, unsigned, "none"),
        ("not a JWT", HS, "abc".into(), "three"),
        (
            "truncated signature",
            HS,
            format!("{data}.AAAA"),
            "signature",
        ),
        ("RS256 to an HS256 policy", HS, rs_to_hs, "RS256"),
        ("HS256 to a key-set policy", KEYS, hs_to_keys, "HS256"),
        ("unknown key id", KEYS, rs256("r9", &good), "r9"),
        ("wrong key for the id", KEYS, es256("r1", &good), "EC"),
    ];
    for (what, policy, token, says) in cases {
        match decide(&policy, &token, "team-a-1") {
            Decision::Unauthorized(why) => assert!(why.contains(says), "{what}: {why}"),
            other => panic!("{what}: {other:?}"),
        }
    }
}

#[derive(Default)]
struct Hooks;

async fn whoami(room: RoomCtx, req: AppRequest) -> Result<Reply, ApiError> {
    Ok(Reply::json(
        200,
        json!({
            "sub": room.caller().subject(),
            "room": room.name(),
            "agent": req.header("user-agent"),
            "callerHeader": req.header("x-nanotype-caller").map(|h| h.contains("root")),
        }),
    ))
}

impl RoomHooks for Hooks {
    fn routes(self: std::rc::Rc<Self>) -> Router {
        Router::new().get("whoami", whoami).post("whoami", whoami)
    }
}

#[nanotype::table(name = "notes")]
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Note {
    #[nanotype(primary_key)]
    pub id: i64,
}

nanotype::schema!(Notes = [Note]);

#[test]
fn the_tokens_subject_reaches_the_room() {
    let app = TestApp::<Notes, Hooks, _>::new(HS)
        .unwrap()
        .var("JWT_SECRET", SECRET)
        .token(&hs256(&claims("ana", json!(["team-a-"]))));
    let me = app.post("/rooms/team-a-1/whoami", Value::Null);
    assert_eq!(me.status, 200, "{}", me.json_body());
    assert_eq!(me.json_body()["sub"], "ana");
    assert_eq!(app.post("/rooms/team-b-1/whoami", Value::Null).status, 403);
    // A caller header sent by a client is not the caller: the gateway sets it.
    let forged = app.request(
        nanotype::host::HttpRequest::new("POST", "/rooms/team-a-1/whoami")
            .with_header(
                "authorization",
                &format!("Bearer {}", hs256(&claims("ana", json!("*")))),
            )
            .with_header("x-nanotype-caller", r#"{"subject":"root"}"#)
            .with_header("user-agent", "tests/1.0"),
    );
    let seen = forged.json_body();
    assert_eq!(seen["sub"], "ana");
    assert_eq!(
        seen["callerHeader"], false,
        "the gateway's caller header, not the client's"
    );
    assert_eq!(
        seen["agent"], "tests/1.0",
        "the client's own headers reach app code"
    );
}
