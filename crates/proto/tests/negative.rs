//! Negative sweeps: every malformed input yields its own typed error, never a panic.

mod common;

use clave_proto::Error;
use clave_proto::code::{Manifest, open_code, seal_code, testing::seal_code_unchecked};
use clave_proto::derive::identity_key;
use clave_proto::invoke::{InvokeRequest, decode_bhttp, open_invoke};
use clave_proto::ohttp::{KeyConfig, client_encapsulate, server_decapsulate};
use clave_proto::{CodeHash, KeyBundle, KeyPurpose, KeySpec, SealedCode, SignedObject};

const LOW_ORDER: [&str; 7] = [
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0100000000000000000000000000000000000000000000000000000000000000",
    "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
    "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
];

fn invoke_key() -> clave_proto::ServerKey {
    common::derived(KeyPurpose::Invoke, 1)
        .server_key()
        .expect("key")
}

#[test]
fn key_config_truncation_trailing_and_lengths() {
    let cfg = invoke_key().config().encode();
    for n in 0..cfg.len() {
        assert!(
            matches!(KeyConfig::decode(&cfg[..n]), Err(Error::Truncated { .. })),
            "prefix {n}"
        );
    }
    let mut long = cfg.clone();
    long.push(0);
    assert_eq!(
        KeyConfig::decode(&long),
        Err(Error::TrailingBytes {
            what: "key config",
            count: 1
        })
    );
    // Symmetric suites length 0 and not a multiple of 4.
    let mut zero = cfg[..35].to_vec();
    zero.extend_from_slice(&[0, 0]);
    assert!(matches!(
        KeyConfig::decode(&zero),
        Err(Error::LengthOutOfRange { len: 0, .. })
    ));
    let mut three = cfg[..35].to_vec();
    three.extend_from_slice(&[0, 3, 0, 1, 0]);
    assert!(matches!(
        KeyConfig::decode(&three),
        Err(Error::LengthOutOfRange { len: 3, .. })
    ));
    // Oversized suites length.
    let mut big = cfg[..35].to_vec();
    big.extend_from_slice(&[0xff, 0xfc, 0, 1, 0, 1]);
    assert!(matches!(
        KeyConfig::decode(&big),
        Err(Error::Truncated { .. })
    ));
    // Only unsupported suites.
    let mut chacha = cfg[..35].to_vec();
    chacha.extend_from_slice(&[0, 8, 0, 1, 0, 3, 0, 2, 0, 1]);
    assert_eq!(KeyConfig::decode(&chacha), Err(Error::NoSupportedSuite));
    let mut kdf = cfg[..35].to_vec();
    kdf.extend_from_slice(&[0, 4, 0, 2, 0, 1]);
    assert_eq!(KeyConfig::decode(&kdf), Err(Error::NoSupportedSuite));
}

#[test]
fn key_config_unsupported_kem_and_bad_public_keys() {
    let cfg = invoke_key().config().encode();
    for kem in [0x0010u16, 0x0011, 0x0021, 0x0000, 0xffff] {
        let mut c = cfg.clone();
        c[1..3].copy_from_slice(&kem.to_be_bytes());
        assert_eq!(KeyConfig::decode(&c), Err(Error::UnsupportedKem(kem)));
    }
    for pk in LOW_ORDER {
        let mut c = cfg.clone();
        c[3..35].copy_from_slice(&hex::decode(pk).expect("hex"));
        assert_eq!(KeyConfig::decode(&c), Err(Error::InvalidPublicKey), "{pk}");
        // The same point with the ignored top bit set.
        c[34] |= 0x80;
        assert_eq!(
            KeyConfig::decode(&c),
            Err(Error::InvalidPublicKey),
            "{pk} | 0x80"
        );
    }
}

#[test]
fn key_config_list_errors() {
    let cfg = invoke_key().config().encode();
    let list = KeyConfig::encode_list(&[KeyConfig::decode(&cfg).expect("cfg")]);
    for n in 1..list.len() {
        assert!(
            matches!(
                KeyConfig::decode_list(&list[..n]),
                Err(Error::Truncated { .. })
            ),
            "prefix {n}"
        );
    }
    assert_eq!(
        KeyConfig::decode_list(&[]),
        Err(Error::NoSupportedKeyConfig)
    );
    // An oversized length prefix.
    let mut over = list.clone();
    over[0] = 0xff;
    assert!(matches!(
        KeyConfig::decode_list(&over),
        Err(Error::Truncated { .. })
    ));
    // A list whose only entry has an unknown KEM: skipped, so nothing usable.
    let mut unknown = list.clone();
    unknown[3..5].copy_from_slice(&0x0010u16.to_be_bytes());
    assert_eq!(
        KeyConfig::decode_list(&unknown),
        Err(Error::NoSupportedKeyConfig)
    );
    // Unknown entries are skipped next to good ones.
    let mut both = unknown.clone();
    both.extend_from_slice(&list);
    assert_eq!(KeyConfig::decode_list(&both).expect("one usable").len(), 1);
    // A malformed entry is an error, not skipped.
    let mut bad = list.clone();
    bad[5..37].fill(0);
    assert_eq!(KeyConfig::decode_list(&bad), Err(Error::InvalidPublicKey));
}

#[test]
fn request_truncation_and_bit_flips() {
    let mut rng = common::rng();
    let key = invoke_key();
    let keys = std::slice::from_ref(&key);
    let (enc, _) = client_encapsulate(key.config(), b"payload", &mut rng).expect("enc");
    for n in 0..enc.len() {
        let err = server_decapsulate(keys, &enc[..n]).expect_err("truncated");
        match n {
            0..7 => assert!(
                matches!(
                    err,
                    Error::Truncated {
                        what: "request header",
                        ..
                    }
                ),
                "{n}"
            ),
            7..39 => assert!(matches!(
                err,
                Error::Truncated {
                    what: "encapsulated key",
                    ..
                }
            )),
            39..55 => assert!(matches!(
                err,
                Error::Truncated {
                    what: "ciphertext",
                    ..
                }
            )),
            _ => assert_eq!(err, Error::DecryptionFailed, "{n}"),
        }
    }
    for i in 0..enc.len() {
        for bit in [0x01u8, 0x80] {
            let mut m = enc.clone();
            m[i] ^= bit;
            let err = server_decapsulate(keys, &m).expect_err("flipped");
            match i {
                0 => assert_eq!(err, Error::UnknownKeyId(m[0])),
                1 | 2 => assert_eq!(err, Error::UnsupportedKem(u16::from_be_bytes([m[1], m[2]]))),
                3 | 4 => assert_eq!(err, Error::UnsupportedKdf(u16::from_be_bytes([m[3], m[4]]))),
                5 | 6 => {
                    assert_eq!(
                        err,
                        Error::UnsupportedAead(u16::from_be_bytes([m[5], m[6]]))
                    )
                }
                _ => assert!(
                    matches!(err, Error::DecryptionFailed | Error::InvalidPublicKey),
                    "byte {i}: {err:?}"
                ),
            }
        }
    }
    // Low-order ephemeral keys.
    for pk in LOW_ORDER {
        let mut m = enc.clone();
        m[7..39].copy_from_slice(&hex::decode(pk).expect("hex"));
        assert_eq!(
            server_decapsulate(keys, &m).err(),
            Some(Error::InvalidPublicKey),
            "{pk}"
        );
    }
    // A key from another epoch (another key id) does not know the request.
    let other = common::derived(KeyPurpose::Invoke, 2)
        .server_key()
        .expect("other");
    if other.config().key_id() != key.config().key_id() {
        assert_eq!(
            server_decapsulate(std::slice::from_ref(&other), &enc).err(),
            Some(Error::UnknownKeyId(key.config().key_id().0))
        );
    }
    assert_eq!(
        server_decapsulate(&[], &enc).err(),
        Some(Error::UnknownKeyId(key.config().key_id().0))
    );
}

#[test]
fn response_truncation_and_bit_flips() {
    let mut rng = common::rng();
    let key = invoke_key();
    let (enc, ctx) = client_encapsulate(key.config(), b"q", &mut rng).expect("enc");
    let (_, sctx) = key.decapsulate(&enc).expect("dec");
    let resp = sctx.encapsulate(b"answer", &mut rng).expect("resp");
    for n in 0..resp.len() {
        let err = ctx.open(&resp[..n]).expect_err("truncated");
        if n < 32 {
            assert!(matches!(
                err,
                Error::Truncated {
                    what: "encapsulated response",
                    ..
                }
            ));
        } else {
            assert_eq!(err, Error::DecryptionFailed);
        }
    }
    for i in 0..resp.len() {
        let mut m = resp.clone();
        m[i] ^= 0x04;
        assert_eq!(ctx.open(&m), Err(Error::DecryptionFailed), "byte {i}");
    }
}

#[test]
fn code_envelope_negatives() {
    let mut rng = common::rng();
    let key = common::derived(KeyPurpose::Code, 0)
        .server_key()
        .expect("key");
    let manifest = common::manifest_bytes(common::CODE);
    // Sealing code that does not match the manifest is refused.
    assert!(matches!(
        seal_code(key.config(), &manifest, b"other code", &mut rng),
        Err(Error::CodeHashMismatch { .. })
    ));
    let sealed = seal_code(key.config(), &manifest, common::CODE, &mut rng).expect("seal");
    // Another manifest (AAD mismatch).
    let other = common::manifest_bytes(b"other code");
    assert_eq!(
        open_code(&key, &other, &sealed),
        Err(Error::ManifestMismatch)
    );
    let mut spaced = manifest.clone();
    spaced.push(b' ');
    assert_eq!(
        open_code(&key, &spaced, &sealed),
        Err(Error::ManifestMismatch)
    );
    // Code that does not hash to the manifest's code hash.
    let wrong = seal_code_unchecked(key.config(), &manifest, b"evil", &mut rng).expect("seal");
    assert_eq!(
        open_code(&key, &manifest, &wrong),
        Err(Error::CodeHashMismatch {
            expected: CodeHash::of(common::CODE),
            actual: CodeHash::of(b"evil")
        })
    );
    // Wrong key (another spec).
    let invoke = invoke_key();
    let err = open_code(&invoke, &manifest, &sealed).expect_err("wrong key");
    assert!(matches!(
        err,
        Error::UnknownKeyId(_) | Error::DecryptionFailed
    ));
    // Truncation at every length and bit flips in every region of the wire form.
    let wire = sealed.to_bytes();
    for n in 0..wire.len() {
        // header 7 + digest 32 + enc 32 + tag 16: shorter is structurally truncated; longer
        // prefixes only lose ciphertext, which authentication catches.
        match SealedCode::from_bytes(&wire[..n]) {
            Err(err) => assert!(
                n < 87 && matches!(err, Error::Truncated { .. }),
                "{n}: {err:?}"
            ),
            Ok(s) => {
                assert!(n >= 87, "{n}");
                assert_eq!(open_code(&key, &manifest, &s), Err(Error::DecryptionFailed));
            }
        }
    }
    for i in 0..wire.len() {
        let mut m = wire.clone();
        m[i] ^= 0x10;
        let res = SealedCode::from_bytes(&m).and_then(|s| open_code(&key, &manifest, &s));
        let err = res.expect_err("flipped");
        let ok = match i {
            0 => matches!(err, Error::UnknownKeyId(_)),
            1 | 2 => matches!(err, Error::UnsupportedKem(_)),
            3 | 4 => matches!(err, Error::UnsupportedKdf(_)),
            5 | 6 => matches!(err, Error::UnsupportedAead(_)),
            7..39 => err == Error::ManifestMismatch,
            _ => matches!(err, Error::DecryptionFailed | Error::InvalidPublicKey),
        };
        assert!(ok, "byte {i}: {err:?}");
    }
    // A manifest that is not JSON.
    assert!(matches!(
        Manifest::from_bytes(b"{"),
        Err(Error::InvalidJson { .. })
    ));
    let unknown_field = String::from_utf8(manifest.clone())
        .expect("utf8")
        .replace('}', r#","x":1}"#);
    assert!(matches!(
        Manifest::from_bytes(unknown_field.as_bytes()),
        Err(Error::InvalidJson { .. })
    ));
}

#[test]
fn key_spec_non_canonical() {
    let spec = common::spec(KeyPurpose::Code, 0);
    let canonical = String::from_utf8(spec.to_bytes()).expect("utf8");
    let pretty = serde_json::to_string_pretty(&spec).expect("pretty");
    let reordered = serde_json::to_string(&spec).expect("struct order");
    assert_ne!(
        reordered, canonical,
        "struct order is not the canonical order"
    );
    let duplicated = canonical.replacen('{', r#"{"epoch":0,"#, 1);
    let spaced = format!(" {canonical}");
    for bad in [pretty, reordered, spaced] {
        assert_eq!(
            KeySpec::from_bytes(bad.as_bytes()),
            Err(Error::NonCanonical { what: "key spec" }),
            "{bad}"
        );
    }
    assert!(
        matches!(
            KeySpec::from_bytes(duplicated.as_bytes()),
            Err(Error::InvalidJson { ref reason, .. }) if reason.contains("duplicate field `epoch`")
        ),
        "{:?}",
        KeySpec::from_bytes(duplicated.as_bytes())
    );
    assert!(matches!(
        KeySpec::from_bytes(b"[]"),
        Err(Error::InvalidJson { .. })
    ));
    assert!(matches!(
        KeySpec::from_bytes(b""),
        Err(Error::InvalidJson { .. })
    ));
}

#[test]
fn bundle_negatives() {
    let identity = identity_key(&common::master()).expect("id");
    let vk = identity.verifying_key();
    let d = common::derived(KeyPurpose::Invoke, 1);
    let bundle = KeyBundle {
        spec: common::spec(KeyPurpose::Invoke, 1),
        key_config: d.key_config.clone(),
        not_before: 0,
        not_after: u64::MAX,
    };
    let signed = bundle.sign(&identity);
    // Signed by another key.
    let mallory = identity_key(&clave_proto::MasterSecret::from_bytes([9; 32])).expect("m");
    assert_eq!(
        KeyBundle::verify(&bundle.sign(&mallory), &vk, 1),
        Err(Error::BadSignature)
    );
    // A payload changed by one byte (every byte).
    let payload = bundle.to_payload();
    for i in 0..payload.len() {
        let mut p = payload.clone();
        p[i] ^= 0x01;
        let forged = SignedObject {
            payload: base64_url(&p),
            signature: signed.signature.clone(),
        };
        assert_eq!(
            KeyBundle::verify(&forged, &vk, 1),
            Err(Error::BadSignature),
            "byte {i}"
        );
    }
    // A signature changed by one bit, truncated, or not base64url.
    let mut sig = signed.clone();
    sig.signature = flip_b64(&signed.signature);
    assert_eq!(KeyBundle::verify(&sig, &vk, 1), Err(Error::BadSignature));
    let mut short = signed.clone();
    short.signature.truncate(40);
    assert!(matches!(
        KeyBundle::verify(&short, &vk, 1),
        Err(Error::BadSignature | Error::InvalidBase64 { .. })
    ));
    let mut bad = signed.clone();
    bad.payload.push('=');
    assert_eq!(
        KeyBundle::verify(&bad, &vk, 1),
        Err(Error::InvalidBase64 { field: "payload" })
    );
    bad = signed.clone();
    bad.signature = "!!".to_owned();
    assert_eq!(
        KeyBundle::verify(&bad, &vk, 1),
        Err(Error::InvalidBase64 { field: "signature" })
    );
    assert!(matches!(
        SignedObject::from_json(b"{\"payload\":\"\"}"),
        Err(Error::InvalidJson { .. })
    ));

    // Validly signed but semantically wrong payloads.
    let sign = |p: &[u8]| SignedObject::sign(&identity, p);
    let other_cfg = common::derived(KeyPurpose::Invoke, 2).key_config;
    if other_cfg.key_id() != d.key_config.key_id() {
        let mismatch = KeyBundle {
            key_config: other_cfg,
            ..bundle.clone()
        };
        assert!(matches!(
            KeyBundle::verify(&sign(&mismatch.to_payload()), &vk, 1),
            Err(Error::KeyIdMismatch { .. })
        ));
    }
    let backwards = KeyBundle {
        not_before: 5,
        not_after: 4,
        ..bundle.clone()
    };
    assert_eq!(
        KeyBundle::verify(&sign(&backwards.to_payload()), &vk, 4),
        Err(Error::InvalidValidity)
    );
    let pretty_spec = serde_json::to_vec_pretty(&bundle.spec).expect("pretty");
    let p = format!(
        r#"{{"spec":"{}","key_config":"{}","not_before":0,"not_after":1}}"#,
        base64_url(&pretty_spec),
        base64_url(&bundle.key_config.encode())
    );
    assert_eq!(
        KeyBundle::verify(&sign(p.as_bytes()), &vk, 1),
        Err(Error::NonCanonical { what: "key spec" })
    );
    assert!(matches!(
        KeyBundle::verify(&sign(b"{}"), &vk, 1),
        Err(Error::InvalidJson {
            what: "key bundle",
            ..
        })
    ));
}

fn base64_url(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

fn flip_b64(s: &str) -> String {
    use base64::Engine as _;
    let mut b = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .expect("b64");
    b[10] ^= 0x01;
    base64_url(&b)
}

fn raw_request(method: &str, path: &str, headers: &[(&str, &str)]) -> Vec<u8> {
    let mut m = bhttp::Message::request(
        method.as_bytes().to_vec(),
        b"https".to_vec(),
        b"clave".to_vec(),
        path.as_bytes().to_vec(),
    );
    for (n, v) in headers {
        m.put_header(*n, *v);
    }
    let mut out = Vec::new();
    m.write_bhttp(bhttp::Mode::KnownLength, &mut out)
        .expect("write");
    out
}

#[test]
fn invoke_request_negatives() {
    let hash = CodeHash::of(b"x").to_hex();
    let good = [("clave-code-hash", hash.as_str()), ("date", "1700000000")];
    assert!(InvokeRequest::from_bhttp(&raw_request("POST", "/p/f", &good)).is_ok());
    // Any method token, and a path and query after the function name, reach the function.
    let r = InvokeRequest::from_bhttp(&raw_request("GET", "/p/f/items?id=3", &good)).expect("ok");
    assert_eq!(
        (r.method.as_str(), r.target.as_str()),
        ("GET", "/items?id=3")
    );
    assert_eq!(r.function.as_str(), "f");
    let r = InvokeRequest::from_bhttp(&raw_request("PATCH", "/p/f?q=1", &good)).expect("ok");
    assert_eq!((r.method.as_str(), r.target.as_str()), ("PATCH", "?q=1"));
    assert_eq!(
        InvokeRequest::from_bhttp(&r.to_bhttp().expect("encode")),
        Ok(r)
    );
    let cases: Vec<(Vec<u8>, Error)> = vec![
        (raw_request("GE T", "/p/f", &good), Error::InvalidMethod),
        (raw_request("", "/p/f", &good), Error::InvalidMethod),
        (
            raw_request(&"G".repeat(33), "/p/f", &good),
            Error::InvalidMethod,
        ),
        (
            raw_request("POST", "/p", &good),
            Error::InvalidTarget {
                reason: "path must be /{project}/{function}[/path][?query]",
            },
        ),
        (
            raw_request("POST", "/p/f/a#b", &good),
            Error::InvalidTarget {
                reason: "the path and query must be visible ASCII without # (percent-encode the rest)",
            },
        ),
        (
            raw_request("POST", "/p/f/a b", &good),
            Error::InvalidTarget {
                reason: "the path and query must be visible ASCII without # (percent-encode the rest)",
            },
        ),
        (
            raw_request("POST", &format!("/p/f/{}", "a".repeat(8192)), &good),
            Error::InvalidTarget {
                reason: "the path and query are longer than 8192 bytes",
            },
        ),
        (
            raw_request("POST", "p/f", &good),
            Error::InvalidTarget {
                reason: "path must start with /",
            },
        ),
        (
            raw_request("POST", "/P/f", &good),
            Error::InvalidName {
                kind: "project",
                reason: "must start with [a-z0-9]",
            },
        ),
        (
            raw_request("POST", "/p/F?q=1", &good),
            Error::InvalidName {
                kind: "function",
                reason: "must start with [a-z0-9]",
            },
        ),
        (
            raw_request("POST", "/p/f", &[("date", "1")]),
            Error::MissingHeader("clave-code-hash"),
        ),
        (
            raw_request("POST", "/p/f", &[("clave-code-hash", hash.as_str())]),
            Error::MissingHeader("date"),
        ),
        (
            raw_request("POST", "/p/f", &[("clave-code-hash", "abc"), ("date", "1")]),
            Error::InvalidHeader {
                name: "clave-code-hash",
                reason: "not 64 lowercase hex digits",
            },
        ),
        (
            raw_request(
                "POST",
                "/p/f",
                &[
                    ("clave-code-hash", hash.as_str()),
                    ("clave-code-hash", hash.as_str()),
                    ("date", "1"),
                ],
            ),
            Error::InvalidHeader {
                name: "clave-code-hash",
                reason: "repeated",
            },
        ),
        (
            raw_request(
                "POST",
                "/p/f",
                &[
                    ("clave-code-hash", hash.as_str()),
                    ("clave-x", "1"),
                    ("date", "1"),
                ],
            ),
            Error::InvalidHeader {
                name: "clave-*",
                reason: "reserved",
            },
        ),
        (
            raw_request(
                "POST",
                "/p/f",
                &[
                    ("clave-code-hash", hash.as_str()),
                    ("date", "1"),
                    ("clave-mode", "sync"),
                ],
            ),
            Error::InvalidHeader {
                name: "clave-mode",
                reason: "the only value is async",
            },
        ),
        (
            raw_request(
                "POST",
                "/p/f",
                &[
                    ("clave-code-hash", hash.as_str()),
                    ("date", "1"),
                    ("clave-mode", "ASYNC"),
                ],
            ),
            Error::InvalidHeader {
                name: "clave-mode",
                reason: "the only value is async",
            },
        ),
        (
            raw_request(
                "POST",
                "/p/f",
                &[
                    ("clave-code-hash", hash.as_str()),
                    ("date", "1"),
                    ("clave-mode", "async"),
                    ("clave-mode", "async"),
                ],
            ),
            Error::InvalidHeader {
                name: "clave-mode",
                reason: "repeated",
            },
        ),
    ];
    for (bytes, expected) in cases {
        assert_eq!(InvokeRequest::from_bhttp(&bytes), Err(expected));
    }
    // The sealed mode marker: absent is synchronous, `async` is asynchronous.
    let marked = raw_request(
        "POST",
        "/p/f",
        &[
            ("clave-code-hash", hash.as_str()),
            ("date", "1"),
            ("clave-mode", "async"),
        ],
    );
    assert_eq!(
        InvokeRequest::from_bhttp(&marked).map(|r| r.mode),
        Ok(clave_proto::InvokeMode::Async)
    );
    assert_eq!(
        InvokeRequest::from_bhttp(&raw_request("POST", "/p/f", &good)).map(|r| r.mode),
        Ok(clave_proto::InvokeMode::Sync)
    );
    // The date: decimal unix seconds, or an RFC 9110 HTTP-date as any HTTP client writes it.
    for (date, secs) in [
        ("0", 0),
        ("1796601540", 1_796_601_540),
        ("Sun, 06 Dec 2026 23:59:00 GMT", 1_796_601_540),
        ("Wed, 27 Jan 2021 04:45:07 GMT", 1_611_722_707),
        ("Thu, 01 Jan 1970 00:00:00 GMT", 0),
        // The obsolete forms RFC 9110 §5.6.7 says a recipient accepts: RFC 850 and asctime.
        ("Sunday, 06-Dec-26 23:59:00 GMT", 1_796_601_540),
        ("Sun Dec  6 23:59:00 2026", 1_796_601_540),
    ] {
        let b = raw_request(
            "POST",
            "/p/f",
            &[("clave-code-hash", hash.as_str()), ("date", date)],
        );
        assert_eq!(
            InvokeRequest::from_bhttp(&b).map(|r| r.date),
            Ok(secs),
            "{date:?}"
        );
    }
    for date in [
        "",
        "01",
        "-1",
        "+1",
        "1.5",
        "1e9",
        "99999999999999999999",
        "123456789012345678901",
        // HTTP-dates that are not: wrong weekday, no "GMT", other zone, one-digit day, lower case,
        // out-of-range fields, before 1970, RFC 3339, trailing junk.
        "Mon, 06 Dec 2026 23:59:00 GMT",
        "Sun, 06 Dec 2026 23:59:00",
        "Sun, 06 Dec 2026 23:59:00 UTC",
        "Sun, 06 Dec 2026 23:59:00 +0000",
        "Sun, 6 Dec 2026 23:59:00 GMT",
        "sun, 06 dec 2026 23:59:00 gmt",
        "Sun, 06 Dec 2026 24:00:00 GMT",
        "Sun, 06 Dec 2026 23:60:00 GMT",
        "Fri, 32 Dec 2026 00:00:00 GMT",
        "Wed, 31 Dec 1969 23:59:59 GMT",
        "2026-12-06T23:59:00Z",
        "Sun, 06 Dec 2026 23:59:00 GMT x",
        "Sun, 06 Dec 2026 23:59:00 GMT, Sun, 06 Dec 2026 23:59:00 GMT",
    ] {
        let b = raw_request(
            "POST",
            "/p/f",
            &[("clave-code-hash", hash.as_str()), ("date", date)],
        );
        assert_eq!(
            InvokeRequest::from_bhttp(&b),
            Err(Error::InvalidHeader {
                name: "date",
                reason: "neither decimal unix seconds nor an HTTP-date"
            }),
            "{date:?}"
        );
    }
    // Not UTF-8.
    let mut m = bhttp::Message::request(
        b"POST".to_vec(),
        b"https".to_vec(),
        b"clave".to_vec(),
        b"/p/f".to_vec(),
    );
    m.put_header("clave-code-hash", hash.as_str());
    m.put_header("date", &b"\xff1"[..]);
    let mut b = Vec::new();
    m.write_bhttp(bhttp::Mode::KnownLength, &mut b)
        .expect("write");
    assert_eq!(
        InvokeRequest::from_bhttp(&b),
        Err(Error::InvalidHeader {
            name: "date",
            reason: "neither decimal unix seconds nor an HTTP-date"
        })
    );
    // A response where a request is expected.
    let mut resp = Vec::new();
    bhttp::Message::response(bhttp::StatusCode::try_from(200u16).expect("status"))
        .write_bhttp(bhttp::Mode::KnownLength, &mut resp)
        .expect("write");
    assert_eq!(
        InvokeRequest::from_bhttp(&resp),
        Err(Error::UnexpectedMessage {
            expected: "request"
        })
    );
    // Zero padding is fine; other trailing bytes are not.
    let mut padded = raw_request("POST", "/p/f", &good);
    padded.extend_from_slice(&[0, 0, 0]);
    assert!(InvokeRequest::from_bhttp(&padded).is_ok());
    let mut trailing = raw_request("POST", "/p/f", &good);
    trailing.push(7);
    assert!(matches!(
        InvokeRequest::from_bhttp(&trailing),
        Err(Error::TrailingBytes { .. })
    ));
    // Truncation at every length never panics and never yields the original request.
    let full = raw_request("POST", "/p/f", &good);
    let original = InvokeRequest::from_bhttp(&full).expect("ok");
    for n in 0..full.len() {
        if let Ok(r) = InvokeRequest::from_bhttp(&full[..n]) {
            // Only dropping the empty content/trailer bytes keeps the meaning (RFC 9292 §3.8).
            assert_eq!(r, original, "prefix {n}");
            assert!(n >= full.len() - 2, "prefix {n}");
        }
    }
    assert!(matches!(
        decode_bhttp(&[0x00, 0xff, 0xff]),
        Err(Error::Bhttp(_))
    ));
    assert!(matches!(decode_bhttp(&[0x09]), Err(Error::Bhttp(_))));
}

#[test]
fn invoke_with_wrong_key_id() {
    let mut rng = common::rng();
    let key = invoke_key();
    let req = InvokeRequest::new(
        "p".parse().expect("p"),
        "f".parse().expect("f"),
        CodeHash::of(b"x"),
        1,
        Vec::new(),
    );
    let (mut enc, _) = clave_proto::seal_invoke(key.config(), &req, &mut rng).expect("seal");
    enc[0] = enc[0].wrapping_add(1);
    assert_eq!(
        open_invoke(std::slice::from_ref(&key), &enc).err(),
        Some(Error::UnknownKeyId(enc[0]))
    );
}
