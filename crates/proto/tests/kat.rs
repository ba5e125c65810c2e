//! Known-answer tests with the values published in the RFCs themselves (see `data/README.md`).

use clave_proto::invoke::decode_bhttp;
use clave_proto::ohttp::{
    self, Kem, KeyConfig, LABEL_REQUEST, LABEL_RESPONSE, PrivateKey, RequestHeader, ServerKey,
    SymmetricSuite, testing::FixedBytes,
};
use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};

const RFC9180_A11: &str = include_str!("data/rfc9180-a.1.1.txt");
const RFC9458_A: &str = include_str!("data/rfc9458-appendix-a.txt");
const RFC9292: &str = include_str!("data/rfc9292-examples.txt");

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).expect("hex in a test vector")
}

/// `key: value` pairs of the RFC 9180 text, hex continuation lines appended, in order.
fn rfc9180_fields() -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in RFC9180_A11.lines().map(str::trim) {
        if line.is_empty() || line.starts_with("A.1") {
            continue;
        }
        if let Some((k, v)) = line.split_once(':') {
            out.push((k.trim().to_owned(), v.trim().to_owned()));
        } else if let Some(last) = out.last_mut() {
            last.1.push_str(line);
        }
    }
    out
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> &'a str {
    &fields.iter().find(|(k, _)| k == name).expect(name).1
}

type Suite = (
    hpke::aead::AesGcm128,
    hpke::kdf::HkdfSha256,
    hpke::kem::X25519HkdfSha256,
);

#[test]
fn rfc9180_a_1_1_base_x25519_sha256_aes128gcm() {
    use hpke::aead::AesGcm128;
    use hpke::kdf::HkdfSha256;
    use hpke::kem::X25519HkdfSha256 as K;
    let _: Option<Suite> = None;
    let f = rfc9180_fields();
    assert_eq!(field(&f, "mode"), "0");
    assert_eq!(field(&f, "kem_id"), "32");
    let info = unhex(field(&f, "info"));

    // DeriveKeyPair(ikmR), DeriveKeyPair(ikmE).
    let (sk_r, pk_r) = K::derive_keypair(&unhex(field(&f, "ikmR")));
    assert_eq!(pk_r.to_bytes().to_vec(), unhex(field(&f, "pkRm")));
    assert_eq!(sk_r.to_bytes().to_vec(), unhex(field(&f, "skRm")));
    let (sk_e, pk_e) = K::derive_keypair(&unhex(field(&f, "ikmE")));
    assert_eq!(pk_e.to_bytes().to_vec(), unhex(field(&f, "pkEm")));
    assert_eq!(sk_e.to_bytes().to_vec(), unhex(field(&f, "skEm")));
    // Our PrivateKey::derive is the same DeriveKeyPair.
    let ours = PrivateKey::derive(Kem::X25519HkdfSha256, &unhex(field(&f, "ikmR")));
    assert_eq!(ours.public_key(), unhex(field(&f, "pkRm")));

    // The fixed-bytes RNG hook makes the sender's ephemeral key DeriveKeyPair(ikmE).
    let mut rng = FixedBytes::new(&unhex(field(&f, "ikmE")));
    let (enc, mut sender) = hpke::setup_sender_with_rng::<AesGcm128, HkdfSha256, K>(
        &OpModeS::Base,
        &pk_r,
        &info,
        &mut rng,
    )
    .expect("setup sender");
    assert_eq!(enc.to_bytes().to_vec(), unhex(field(&f, "enc")));
    let mut receiver =
        hpke::setup_receiver::<AesGcm128, HkdfSha256, K>(&OpModeR::Base, &sk_r, &enc, &info)
            .expect("setup receiver");

    // Encryptions: seq 0, 1, 2, 4, 255, 256 (the RFC lists these; the contexts advance through
    // every sequence number in between).
    let mut expected = Vec::new();
    let mut i = 0;
    while i < f.len() {
        if f[i].0 == "sequence number" {
            let seq: u32 = f[i].1.parse().expect("seq");
            assert_eq!(f[i + 1].0, "pt");
            assert_eq!(f[i + 2].0, "aad");
            assert_eq!(f[i + 4].0, "ct");
            expected.push((
                seq,
                unhex(&f[i + 1].1),
                unhex(&f[i + 2].1),
                unhex(&f[i + 4].1),
            ));
        }
        i += 1;
    }
    assert_eq!(
        expected.iter().map(|e| e.0).collect::<Vec<_>>(),
        vec![0, 1, 2, 4, 255, 256]
    );
    let mut next = expected.iter().peekable();
    for seq in 0..=256u32 {
        let aad = format!("Count-{seq}");
        let pt = unhex(field(&f, "pt"));
        let ct = sender.seal(&pt, aad.as_bytes()).expect("seal");
        let opened = receiver.open(&ct, aad.as_bytes()).expect("open");
        assert_eq!(opened, pt);
        if let Some((s, e_pt, e_aad, e_ct)) = next.peek()
            && *s == seq
        {
            assert_eq!(&pt, e_pt);
            assert_eq!(aad.as_bytes(), e_aad.as_slice());
            assert_eq!(&ct, e_ct, "ciphertext at sequence {seq}");
            next.next();
        }
    }
    assert!(next.peek().is_none());

    // Exported values.
    let mut exports = 0;
    for w in f.windows(3) {
        if w[0].0 == "exporter_context" {
            let ctx = unhex(&w[0].1);
            let len: usize = w[1].1.parse().expect("L");
            let mut out = vec![0u8; len];
            sender.export(&ctx, &mut out).expect("export");
            assert_eq!(out, unhex(&w[2].1));
            receiver.export(&ctx, &mut out).expect("export");
            assert_eq!(out, unhex(&w[2].1));
            exports += 1;
        }
    }
    assert_eq!(exports, 3);
}

/// The hex blocks of the RFC 9458 appendix, in order of appearance.
fn rfc9458_blocks() -> Vec<Vec<u8>> {
    let mut blocks = Vec::new();
    let mut cur = String::new();
    for line in RFC9458_A.lines().map(str::trim) {
        let is_hex = !line.is_empty() && line.bytes().all(|b| b.is_ascii_hexdigit());
        if is_hex {
            cur.push_str(line);
        } else if !cur.is_empty() {
            blocks.push(unhex(&cur));
            cur.clear();
        }
    }
    if !cur.is_empty() {
        blocks.push(unhex(&cur));
    }
    blocks
}

struct Rfc9458 {
    sk_r: Vec<u8>,
    config: Vec<u8>,
    request: Vec<u8>,
    sk_e: Vec<u8>,
    pk_e: Vec<u8>,
    info: Vec<u8>,
    enc_request: Vec<u8>,
    response: Vec<u8>,
    secret: Vec<u8>,
    salt: Vec<u8>,
    prk: Vec<u8>,
    key: Vec<u8>,
    nonce: Vec<u8>,
    enc_response: Vec<u8>,
}

fn rfc9458() -> Rfc9458 {
    let b = rfc9458_blocks();
    assert_eq!(b.len(), 14, "RFC 9458 appendix blocks");
    let mut it = b.into_iter();
    let mut n = || it.next().expect("block");
    Rfc9458 {
        sk_r: n(),
        config: n(),
        request: n(),
        sk_e: n(),
        pk_e: n(),
        info: n(),
        enc_request: n(),
        response: n(),
        secret: n(),
        salt: n(),
        prk: n(),
        key: n(),
        nonce: n(),
        enc_response: n(),
    }
}

#[test]
fn rfc9458_appendix_a_key_config() {
    let v = rfc9458();
    let config = KeyConfig::decode(&v.config).expect("published key config");
    assert_eq!(config.key_id().0, 1);
    assert_eq!(config.kem(), Kem::X25519HkdfSha256);
    assert_eq!(
        config.suites(),
        &[
            SymmetricSuite { kdf: 1, aead: 1 },
            SymmetricSuite { kdf: 1, aead: 3 }
        ]
    );
    assert_eq!(config.selected_suite(), Ok(SymmetricSuite::DEFAULT));
    assert_eq!(config.encode(), v.config);
    let sk = PrivateKey::from_bytes(Kem::X25519HkdfSha256, &v.sk_r).expect("sk");
    assert_eq!(sk.public_key(), config.public_key());
    // The list form round-trips too.
    let list = KeyConfig::encode_list(std::slice::from_ref(&config));
    assert_eq!(
        &list[..2],
        &u16::try_from(v.config.len()).expect("len").to_be_bytes()
    );
    assert_eq!(KeyConfig::decode_list(&list), Ok(vec![config]));
}

#[test]
fn rfc9458_appendix_a_server_decapsulates_and_reproduces_response() {
    let v = rfc9458();
    let config = KeyConfig::decode(&v.config).expect("config");
    let header = RequestHeader::decode(&v.enc_request).expect("header");
    assert_eq!(header.info(LABEL_REQUEST), v.info);
    let key = ServerKey::new(
        config,
        PrivateKey::from_bytes(Kem::X25519HkdfSha256, &v.sk_r).expect("sk"),
    )
    .expect("server key");
    let (request, ctx) = ohttp::server_decapsulate(&[key], &v.enc_request).expect("decapsulate");
    assert_eq!(request, v.request);
    assert_eq!(ctx.enc(), v.pk_e.as_slice());
    // Reproduce the published encapsulated response from its published response nonce.
    let response_nonce = &v.enc_response[..16];
    assert_eq!(&v.salt[32..], response_nonce);
    let enc_response = ctx
        .encapsulate(&v.response, &mut FixedBytes::new(response_nonce))
        .expect("encapsulate");
    assert_eq!(enc_response, v.enc_response);

    // The published request is the truncated BHTTP form of GET https://example.com/.
    let m = decode_bhttp(&v.request).expect("bhttp");
    assert_eq!(m.control().method(), Some(&b"GET"[..]));
    assert_eq!(m.control().authority(), Some(&b"example.com"[..]));
    assert_eq!(m.control().path(), Some(&b"/"[..]));
    let r = decode_bhttp(&v.response).expect("bhttp response");
    assert_eq!(r.control().status().map(|s| s.code()), Some(200));
}

#[test]
fn rfc9458_appendix_a_intermediate_values() {
    use hpke::aead::AesGcm128;
    use hpke::kdf::HkdfSha256;
    use hpke::kem::X25519HkdfSha256 as K;
    let v = rfc9458();
    let sk = <K as hpke::Kem>::PrivateKey::from_bytes(&v.sk_r).expect("sk");
    let enc = <K as hpke::Kem>::EncappedKey::from_bytes(&v.pk_e).expect("enc");
    let ctx = hpke::setup_receiver::<AesGcm128, HkdfSha256, K>(&OpModeR::Base, &sk, &enc, &v.info)
        .expect("receiver");
    let mut secret = [0u8; 16];
    ctx.export(LABEL_RESPONSE, &mut secret).expect("export");
    assert_eq!(secret.to_vec(), v.secret);
    let mut salt = v.pk_e.clone();
    salt.extend_from_slice(&v.enc_response[..16]);
    assert_eq!(salt, v.salt);
    let (prk, hk) = hkdf::Hkdf::<sha2::Sha256>::extract(Some(&salt), &secret);
    assert_eq!(prk.to_vec(), v.prk);
    let mut key = [0u8; 16];
    hk.expand(b"key", &mut key).expect("key");
    assert_eq!(key.to_vec(), v.key);
    let mut nonce = [0u8; 12];
    hk.expand(b"nonce", &mut nonce).expect("nonce");
    assert_eq!(nonce.to_vec(), v.nonce);
}

#[test]
fn rfc9458_appendix_a_client_reproduces_request_and_opens_response() {
    let v = rfc9458();
    let config = KeyConfig::decode(&v.config).expect("config");
    let sk_e: [u8; 32] = v.sk_e.as_slice().try_into().expect("32 bytes");
    let (enc_request, ctx) =
        ohttp::testing::client_encapsulate_with_x25519_ephemeral(&config, &sk_e, &v.request)
            .expect("encapsulate");
    assert_eq!(enc_request, v.enc_request);
    assert_eq!(ctx.open(&v.enc_response).expect("open"), v.response);
}

/// Figures of the RFC 9292 file: name and bytes.
fn rfc9292_figures() -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    for line in RFC9292.lines() {
        if let Some(name) = line.strip_prefix("# ") {
            out.push((name.to_owned(), Vec::new()));
        } else if let Some(last) = out.last_mut() {
            let hexpart: String = line
                .chars()
                .take(35)
                .filter(|c| !c.is_whitespace())
                .collect();
            if !hexpart.is_empty() {
                last.1.extend(unhex(&hexpart));
            }
        }
    }
    out
}

fn fields(fs: &bhttp::FieldSection) -> Vec<(Vec<u8>, Vec<u8>)> {
    fs.iter()
        .map(|f| (f.name().to_vec(), f.value().to_vec()))
        .collect()
}

fn control(m: &bhttp::Message) -> String {
    let c = m.control();
    format!(
        "{:?} {:?} {:?} {:?} {:?}",
        c.method(),
        c.scheme(),
        c.authority(),
        c.path(),
        c.status().map(|s| s.code())
    )
}

fn same(a: &bhttp::Message, b: &bhttp::Message) -> bool {
    control(a) == control(b)
        && fields(a.header()) == fields(b.header())
        && a.content() == b.content()
        && fields(a.trailer()) == fields(b.trailer())
        && a.informational().len() == b.informational().len()
}

fn reencode(m: &bhttp::Message, mode: bhttp::Mode) -> bhttp::Message {
    let mut out = Vec::new();
    m.write_bhttp(mode, &mut out).expect("write");
    decode_bhttp(&out).expect("re-read")
}

#[test]
fn rfc9292_examples() {
    let figs = rfc9292_figures();
    let lens: Vec<usize> = figs.iter().map(|f| f.1.len()).collect();
    assert_eq!(
        lens,
        vec![135, 144, 368, 48],
        "figure sizes stated by the RFC"
    );

    // Figures 8 and 9: the same request, known-length and indeterminate-length (padded).
    let known = decode_bhttp(&figs[0].1).expect("figure 8");
    let indet = decode_bhttp(&figs[1].1).expect("figure 9");
    assert!(same(&known, &indet));
    assert_eq!(known.control().method(), Some(&b"GET"[..]));
    assert_eq!(known.control().scheme(), Some(&b"https"[..]));
    // An empty :authority reads back as absent.
    assert!(known.control().authority().unwrap_or_default().is_empty());
    assert_eq!(known.control().path(), Some(&b"/hello.txt"[..]));
    assert_eq!(
        fields(known.header()),
        vec![
            (
                b"user-agent".to_vec(),
                b"curl/7.16.3 libcurl/7.16.3 OpenSSL/0.9.7l zlib/1.2.3".to_vec()
            ),
            (b"host".to_vec(), b"www.example.com".to_vec()),
            (b"accept-language".to_vec(), b"en, mi".to_vec()),
        ]
    );
    // "The last two bytes ... can each be removed"; the indeterminate form loses up to 12.
    for cut in 1..=2 {
        let m = decode_bhttp(&figs[0].1[..figs[0].1.len() - cut]).expect("truncated");
        assert!(same(&known, &m));
    }
    // The 10 padding bytes can go.
    for cut in 1..=10 {
        match decode_bhttp(&figs[1].1[..figs[1].1.len() - cut]) {
            Ok(m) => assert!(same(&known, &m), "cut {cut}"),
            Err(e) => panic!("cut {cut}: {e}"),
        }
    }
    // Deviation: RFC 9292 §3.8 also allows dropping the empty content and trailer of the
    // indeterminate form (cuts 11 and 12), but bhttp 0.8 requires the terminators of
    // indeterminate-length field sections and reports `Truncated`. clave only emits the
    // known-length form, so this is documented rather than patched around; it must not panic.
    for cut in 11..=12 {
        let _ = decode_bhttp(&figs[1].1[..figs[1].1.len() - cut]);
    }
    // bhttp writes the untruncated known-length form of Figure 8 byte for byte.
    let mut out = Vec::new();
    known
        .write_bhttp(bhttp::Mode::KnownLength, &mut out)
        .expect("write");
    assert_eq!(out, figs[0].1);

    // Figure 11: indeterminate-length response with 102 and 103 informational responses.
    let resp = decode_bhttp(&figs[2].1).expect("figure 11");
    let info: Vec<u16> = resp
        .informational()
        .iter()
        .map(|i| i.status().code())
        .collect();
    assert_eq!(info, vec![102, 103]);
    assert_eq!(resp.control().status().map(|s| s.code()), Some(200));
    assert_eq!(
        resp.content(),
        b"Hello World! My content includes a trailing CRLF.\r\n"
    );
    assert_eq!(resp.header().get(b"content-type"), Some(&b"text/plain"[..]));
    assert!(same(&resp, &reencode(&resp, bhttp::Mode::KnownLength)));

    // Figure 13: known-length response with a trailer.
    let chunked = decode_bhttp(&figs[3].1).expect("figure 13");
    assert_eq!(chunked.control().status().map(|s| s.code()), Some(200));
    assert_eq!(chunked.content(), b"This content contains CRLF.\r\n");
    assert_eq!(
        fields(chunked.trailer()),
        vec![(b"trailer".to_vec(), b"text".to_vec())]
    );
    assert!(same(
        &chunked,
        &reencode(&chunked, bhttp::Mode::IndeterminateLength)
    ));
}
