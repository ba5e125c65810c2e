//! Round trips for every envelope, determinism of derivation, and context separation.

mod common;

use clave_proto::code::{Manifest, open_code, seal_code};
use clave_proto::derive::{self, derive_key_with_kem, identity_key};
use clave_proto::invoke::{
    InvokeError, InvokeRequest, InvokeResponse, ProblemKind, decapsulate_invoke, open_invoke,
    seal_invoke,
};
use clave_proto::ohttp::{
    self, Kem, KeyConfig, PrivateKey, ServerKey, SymmetricSuite, client_encapsulate,
    server_decapsulate,
};
use clave_proto::{CodeHash, KeyBundle, KeyPurpose, KeySpec, SealedCode, SignedObject};

#[test]
fn key_spec_canonical_round_trip() {
    let spec = common::spec(KeyPurpose::Invoke, 3);
    let bytes = spec.to_bytes();
    let text = std::str::from_utf8(&bytes).expect("utf8");
    assert!(text.starts_with(r#"{"epoch":3,"policy":{"#), "{text}");
    assert!(text.ends_with(r#""purpose":"invoke"}"#), "{text}");
    assert!(!text.contains(' ') && !text.contains('\n'));
    assert_eq!(KeySpec::from_bytes(&bytes), Ok(spec.clone()));
    assert_eq!(spec.id(), clave_proto::SpecId::of_bytes(&bytes));
    assert_ne!(spec.id(), common::spec(KeyPurpose::Invoke, 4).id());
    assert_ne!(spec.id(), common::spec(KeyPurpose::Code, 3).id());
}

#[test]
fn derivation_is_deterministic() {
    let a = common::derived(KeyPurpose::Invoke, 1);
    let b = common::derived(KeyPurpose::Invoke, 1);
    assert_eq!(a.key_config.encode(), b.key_config.encode());
    assert_eq!(*a.private.to_bytes(), *b.private.to_bytes());
    assert_eq!(
        a.key_config.key_id(),
        common::spec(KeyPurpose::Invoke, 1).id().key_id()
    );
    assert_eq!(a.key_config.suites(), &[SymmetricSuite::DEFAULT]);
    let c = common::derived(KeyPurpose::Invoke, 2);
    assert_ne!(a.key_config.public_key(), c.key_config.public_key());
    let other_master = clave_proto::MasterSecret::from_bytes([0x22; 32]);
    let d = derive::derive_key(&other_master, &common::spec(KeyPurpose::Invoke, 1)).expect("d");
    assert_ne!(a.key_config.public_key(), d.key_config.public_key());
    // Identity key: deterministic, master-dependent.
    let i1 = identity_key(&common::master()).expect("id");
    let i2 = identity_key(&common::master()).expect("id");
    assert_eq!(i1.verifying_key(), i2.verifying_key());
    assert_ne!(
        identity_key(&other_master).expect("id").verifying_key(),
        i1.verifying_key()
    );
    // Debug never shows the secret.
    let dbg = format!("{a:?} {:?}", common::master());
    assert!(!dbg.contains(&hex::encode(&*a.private.to_bytes())));
}

#[test]
fn ohttp_round_trip_and_encapsulations_differ() {
    let mut rng = common::rng();
    let key = common::derived(KeyPurpose::Invoke, 1)
        .server_key()
        .expect("key");
    let (e1, c1) = client_encapsulate(key.config(), b"same", &mut rng).expect("e1");
    let (e2, c2) = client_encapsulate(key.config(), b"same", &mut rng).expect("e2");
    assert_ne!(e1, e2, "two encapsulations of the same request differ");
    let (p1, s1) = key.decapsulate(&e1).expect("d1");
    let (p2, s2) = key.decapsulate(&e2).expect("d2");
    assert_eq!((p1.as_slice(), p2.as_slice()), (&b"same"[..], &b"same"[..]));
    assert_ne!(s1.enc(), s2.enc());
    let r1 = s1.encapsulate(b"one", &mut rng).expect("r1");
    let r2 = s2.encapsulate(b"two", &mut rng).expect("r2");
    assert_eq!(c1.open(&r1).expect("open"), b"one");
    assert_eq!(c2.open(&r2).expect("open"), b"two");
    // A response cannot be opened with another request's context.
    assert_eq!(c1.open(&r2), Err(clave_proto::Error::DecryptionFailed));
    assert_eq!(c2.open(&r1), Err(clave_proto::Error::DecryptionFailed));
}

/// An encapsulation prepared before its request (`prepare_request`) is the same protocol: the
/// server opens it, the response opens with its context, each preparation is fresh, serves one
/// request, and knows which key configuration it was made for.
#[test]
fn prepared_requests_round_trip_once_each() {
    let mut rng = common::rng();
    let key = common::derived(KeyPurpose::Invoke, 1)
        .server_key()
        .expect("key");
    let other = common::derived(KeyPurpose::Invoke, 2)
        .server_key()
        .expect("key");
    let p1 = ohttp::prepare_request(key.config(), &mut rng).expect("p1");
    let p2 = ohttp::prepare_request(key.config(), &mut rng).expect("p2");
    assert!(p1.is_for(key.config()) && !p1.is_for(other.config()));
    // Debug shows no context secret.
    assert!(format!("{p1:?}").contains("Prepared(..)"));
    assert_ne!(p1.enc(), p2.enc());
    let (e1, c1) = p1.encapsulate(b"first").expect("e1");
    let (e2, c2) = p2.encapsulate(b"first").expect("e2");
    assert_ne!(e1, e2, "two preparations use two ephemeral keys");
    for (enc, ctx, answer) in [(&e1, &c1, &b"one"[..]), (&e2, &c2, &b"two"[..])] {
        let (pt, server) = key.decapsulate(enc).expect("opens like any request");
        assert_eq!(pt, b"first");
        let r = server.encapsulate(answer, &mut rng).expect("response");
        assert_eq!(ctx.open(&r).expect("open"), answer);
    }
    // The other epoch's key does not open it.
    assert!(other.decapsulate(&e1).is_err());
    // Nor does a configuration with the same key id and another public key pass for the one it
    // was prepared for: sealed to it, `key` cannot open the request.
    let forged = KeyConfig::new(
        key.config().key_id(),
        Kem::X25519HkdfSha256,
        other.config().public_key().to_vec(),
        vec![SymmetricSuite::DEFAULT],
    )
    .expect("config");
    let prepared = ohttp::prepare_request(&forged, &mut rng).expect("prepared");
    assert!(!prepared.is_for(key.config()) && prepared.is_for(&forged));
    let (enc, _) = prepared.encapsulate(b"x").expect("sealed");
    assert_eq!(
        key.decapsulate(&enc).map(|_| ()),
        Err(clave_proto::Error::DecryptionFailed)
    );

    // The invoke layer: a prepared seal is opened by the engine's decapsulation.
    let req = InvokeRequest::new(
        "p".parse().expect("project"),
        "f".parse().expect("function"),
        CodeHash::of(b"code"),
        1_700_000_000,
        b"{}".to_vec(),
    );
    let prepared = ohttp::prepare_request(key.config(), &mut rng).expect("prepared");
    let (enc, _opener) = clave_proto::seal_invoke_prepared(prepared, &req).expect("sealed");
    let (bhttp, _responder) =
        decapsulate_invoke(std::slice::from_ref(&key), &enc).expect("decapsulated");
    let opened = InvokeRequest::from_bhttp(&bhttp).expect("an invoke request");
    assert_eq!(opened.body, b"{}");
}

/// X-Wing requests are sealed whole: there is nothing to prepare.
#[test]
fn prepared_requests_are_x25519_only() {
    let mut rng = common::rng();
    let key = derive_key_with_kem(
        &common::master(),
        &KeySpec::new(KeyPurpose::Invoke, common::policy(), 1),
        Kem::XWing,
    )
    .expect("x-wing key");
    assert!(matches!(
        ohttp::prepare_request(&key.key_config, &mut rng),
        Err(clave_proto::Error::UnsupportedKem(_))
    ));
}

#[test]
fn key_selection_among_epochs() {
    let mut rng = common::rng();
    let keys: Vec<ServerKey> = (1..=3)
        .map(|e| {
            common::derived(KeyPurpose::Invoke, e)
                .server_key()
                .expect("key")
        })
        .collect();
    for k in &keys {
        let (enc, _) = client_encapsulate(k.config(), b"x", &mut rng).expect("enc");
        let (pt, _) = server_decapsulate(&keys, &enc).expect("selects by key id");
        assert_eq!(pt, b"x");
    }
}

#[test]
fn xwing_and_aes256_round_trip() {
    let mut rng = common::rng();
    let spec = common::spec(KeyPurpose::Invoke, 9);
    let xw = derive_key_with_kem(&common::master(), &spec, Kem::XWing).expect("x-wing");
    assert_eq!(xw.key_config.kem(), Kem::XWing);
    let again = derive_key_with_kem(&common::master(), &spec, Kem::XWing).expect("x-wing");
    assert_eq!(xw.key_config.encode(), again.key_config.encode());
    let decoded = KeyConfig::decode(&xw.key_config.encode()).expect("decode x-wing config");
    assert_eq!(decoded, xw.key_config);
    let key = xw.server_key().expect("key");
    let (enc, ctx) = client_encapsulate(key.config(), b"pq", &mut rng).expect("enc");
    let (pt, sctx) = key.decapsulate(&enc).expect("dec");
    assert_eq!(pt, b"pq");
    assert_eq!(
        ctx.open(&sctx.encapsulate(b"ok", &mut rng).expect("r"))
            .expect("o"),
        b"ok"
    );

    // AES-256-GCM suite (response nonce = max(Nn, Nk) = 32 bytes).
    let x = common::derived(KeyPurpose::Invoke, 1);
    let cfg = KeyConfig::new(
        x.key_config.key_id(),
        Kem::X25519HkdfSha256,
        x.key_config.public_key().to_vec(),
        vec![SymmetricSuite { kdf: 1, aead: 2 }],
    )
    .expect("cfg");
    let key = ServerKey::new(cfg, x.private.clone()).expect("key");
    let (enc, ctx) = client_encapsulate(key.config(), b"256", &mut rng).expect("enc");
    let (pt, sctx) = key.decapsulate(&enc).expect("dec");
    assert_eq!(pt, b"256");
    let resp = sctx.encapsulate(b"", &mut rng).expect("r");
    assert_eq!(resp.len(), 32 + 16);
    assert_eq!(ctx.open(&resp).expect("o"), b"");
}

#[test]
fn private_key_serialisation() {
    let d = common::derived(KeyPurpose::Code, 0);
    let bytes = d.private.to_bytes();
    let back = PrivateKey::from_bytes(Kem::X25519HkdfSha256, &bytes).expect("sk");
    assert_eq!(back.public_key(), d.key_config.public_key());
    assert!(ServerKey::new(d.key_config.clone(), back).is_ok());
    let other = common::derived(KeyPurpose::Code, 1).private;
    assert_eq!(
        ServerKey::new(d.key_config.clone(), other).err(),
        Some(clave_proto::Error::InvalidPrivateKey)
    );
}

#[test]
fn signed_bundle_round_trip() {
    let identity = identity_key(&common::master()).expect("id");
    let d = common::derived(KeyPurpose::Invoke, 1);
    let bundle = KeyBundle {
        spec: common::spec(KeyPurpose::Invoke, 1),
        key_config: d.key_config.clone(),
        not_before: 100,
        not_after: 200,
    };
    let signed = bundle.sign(&identity);
    let json = signed.to_json();
    let parsed = SignedObject::from_json(json.as_bytes()).expect("json");
    assert_eq!(parsed, signed);
    assert_eq!(
        KeyBundle::verify(&parsed, &identity.verifying_key(), 150).expect("verify"),
        bundle
    );
    // The payload is exactly what was signed.
    assert_eq!(
        parsed.verify(&identity.verifying_key()).expect("sig"),
        bundle.to_payload()
    );
    assert_eq!(
        KeyBundle::verify(&parsed, &identity.verifying_key(), 99),
        Err(clave_proto::Error::NotYetValid {
            not_before: 100,
            now: 99
        })
    );
    assert_eq!(
        KeyBundle::verify(&parsed, &identity.verifying_key(), 201),
        Err(clave_proto::Error::Expired {
            not_after: 200,
            now: 201
        })
    );
    // Generic signed objects carry arbitrary bytes.
    let so = SignedObject::sign(&identity, b"\x00\xffanything");
    assert_eq!(
        so.verify(&identity.verifying_key()).expect("v"),
        b"\x00\xffanything"
    );
}

#[test]
fn code_round_trip() {
    let mut rng = common::rng();
    let code_key = common::derived(KeyPurpose::Code, 0)
        .server_key()
        .expect("key");
    let manifest = common::manifest_bytes(common::CODE);
    let sealed = seal_code(code_key.config(), &manifest, common::CODE, &mut rng).expect("seal");
    assert_eq!(sealed.key_id(), code_key.config().key_id());
    assert_eq!(sealed.manifest_digest(), &Manifest::digest(&manifest));
    let wire = sealed.to_bytes();
    let back = SealedCode::from_bytes(&wire).expect("parse");
    assert_eq!(back, sealed);
    let (code, hash) = open_code(&code_key, &manifest, &back).expect("open");
    assert_eq!(code, common::CODE);
    assert_eq!(hash, CodeHash::of(common::CODE));
    let m = Manifest::from_bytes(&manifest).expect("manifest");
    assert_eq!(m.to_bytes(), manifest);
    // Two seals of the same code differ.
    let again = seal_code(code_key.config(), &manifest, common::CODE, &mut rng).expect("seal");
    assert_ne!(again.to_bytes(), wire);
}

fn request() -> InvokeRequest {
    let mut req = InvokeRequest::new(
        "acme".parse().expect("project"),
        "hello".parse().expect("function"),
        CodeHash::of(common::CODE),
        1_700_000_000,
        br#"{"x":1}"#.to_vec(),
    );
    req.headers
        .push(("content-type".to_owned(), "application/json".to_owned()));
    req
}

#[test]
fn invoke_round_trip() {
    let mut rng = common::rng();
    let key = common::derived(KeyPurpose::Invoke, 1)
        .server_key()
        .expect("key");
    let req = request();
    let bhttp = req.to_bhttp().expect("bhttp");
    assert_eq!(InvokeRequest::from_bhttp(&bhttp), Ok(req.clone()));
    // The asynchronous marker survives the round trip and changes the bytes.
    let marked = request().asynchronous();
    let marked_bhttp = marked.to_bhttp().expect("bhttp");
    assert_ne!(marked_bhttp, bhttp);
    assert_eq!(InvokeRequest::from_bhttp(&marked_bhttp), Ok(marked.clone()));
    assert_eq!(marked.mode, clave_proto::InvokeMode::Async);
    // Callers cannot smuggle the marker in through their own headers.
    let mut smuggled = request();
    smuggled
        .headers
        .push(("clave-mode".to_owned(), "async".to_owned()));
    assert_eq!(
        smuggled.to_bhttp(),
        Err(clave_proto::Error::InvalidHeader {
            name: "clave-*/date",
            reason: "reserved"
        })
    );

    let (enc, opener) = seal_invoke(key.config(), &req, &mut rng).expect("seal");
    let (enc2, _) = seal_invoke(key.config(), &req, &mut rng).expect("seal");
    assert_ne!(enc, enc2);
    let (got, responder) = open_invoke(std::slice::from_ref(&key), &enc).expect("open");
    assert_eq!(got, req);
    assert_eq!(got.header("Content-Type"), Some("application/json"));
    let (_, responder2) = open_invoke(std::slice::from_ref(&key), &enc2).expect("open");
    assert_ne!(responder.replay_id(), responder2.replay_id());

    let resp = InvokeResponse {
        status: 201,
        headers: vec![
            ("content-type".to_owned(), "text/plain".to_owned()),
            ("clave-error".to_owned(), "forged".to_owned()),
        ],
        body: b"created".to_vec(),
    };
    let sealed = responder
        .seal_response(&resp, &mut rng)
        .expect("seal response");
    let opened = opener
        .open(&sealed)
        .expect("open")
        .expect("a response, not a problem");
    assert_eq!(opened.status, 201);
    assert_eq!(opened.body, b"created");
    assert_eq!(
        opened.headers,
        vec![("content-type".to_owned(), "text/plain".to_owned())]
    );

    // Errors travel encrypted as problem JSON.
    let problem = InvokeError::new(ProblemKind::ScriptError, Some("TypeError: x".to_owned()));
    let sealed = responder
        .seal_error(&problem, &mut rng)
        .expect("seal error");
    let got = opener.open(&sealed).expect("open").expect_err("a problem");
    assert_eq!(got, problem);
    assert_eq!(got.status, 500);
    // Every kind round-trips through problem JSON.
    for kind in [
        ProblemKind::CodeHashMismatch,
        ProblemKind::Timeout,
        ProblemKind::OutOfMemory,
        ProblemKind::LimitExceeded,
        ProblemKind::StaleDate,
        ProblemKind::Replay,
        ProblemKind::WrongFunction,
        ProblemKind::BadRequest,
        ProblemKind::Internal,
        ProblemKind::Other("future".to_owned()),
    ] {
        let e = InvokeError::new(kind, None);
        assert_eq!(InvokeError::from_problem_json(&e.to_problem_json()), Ok(e));
    }
    // Another request's opener cannot read it.
    let (_, other_opener) = seal_invoke(key.config(), &req, &mut rng).expect("seal");
    assert_eq!(
        other_opener.open(&sealed).err(),
        Some(clave_proto::Error::DecryptionFailed)
    );
}

#[test]
fn malformed_inner_request_can_still_be_answered() {
    let mut rng = common::rng();
    let key = common::derived(KeyPurpose::Invoke, 1)
        .server_key()
        .expect("key");
    let (enc, ctx) = client_encapsulate(key.config(), b"\x00not bhttp", &mut rng).expect("e");
    let bad_inner = |r: clave_proto::Result<InvokeRequest>| {
        assert!(matches!(r, Err(clave_proto::Error::Bhttp(_))), "{r:?}");
    };
    bad_inner(open_invoke(std::slice::from_ref(&key), &enc).map(|(r, _)| r));
    let (bhttp, responder) = decapsulate_invoke(std::slice::from_ref(&key), &enc).expect("dec");
    bad_inner(InvokeRequest::from_bhttp(&bhttp));
    let sealed = responder
        .seal_error(&InvokeError::new(ProblemKind::BadRequest, None), &mut rng)
        .expect("seal");
    assert!(
        !ohttp::ClientResponseContext::open(&ctx, &sealed)
            .expect("open")
            .is_empty()
    );
}
