//! RFC 9180 HPKE, mode base, single-shot with one exported secret, for the suite clave uses on
//! every call: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM or AES-256-GCM.
//!
//! Written on `aws-lc-rs` (assembly X25519, AES-GCM and HMAC-SHA256); the key schedule, the
//! labels and the encodings are ours and checked against the RFC 9180 and RFC 9458 published
//! vectors (`tests/kat.rs`) and, in both directions, against the `ohttp` crate
//! (`tests/interop.rs`). X-Wing stays on the `hpke` crate (`ohttp.rs`).
//!
//! A server key keeps its decoded private key and its public key (the `pkRm` of the KEM
//! context), so decapsulation is one X25519 and no public-key recomputation.

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::{aead, agreement, hmac};
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// DHKEM(X25519, HKDF-SHA256).
pub(crate) const KEM_ID: u16 = 0x0020;
const KDF_ID: u16 = 0x0001;
const LABEL_VERSION: &[u8] = b"HPKE-v1";
/// `"KEM" || I2OSP(kem_id, 2)`.
const KEM_SUITE_ID: [u8; 5] = [b'K', b'E', b'M', 0x00, 0x20];
const NH: usize = 32;
pub(crate) const NONCE_LEN: usize = 12;
pub(crate) const TAG_LEN: usize = 16;

/// `"HPKE" || I2OSP(kem_id, 2) || I2OSP(kdf_id, 2) || I2OSP(aead_id, 2)`.
fn hpke_suite_id(aead_id: u16) -> [u8; 10] {
    let mut s = [0u8; 10];
    s[..4].copy_from_slice(b"HPKE");
    s[4..6].copy_from_slice(&KEM_ID.to_be_bytes());
    s[6..8].copy_from_slice(&KDF_ID.to_be_bytes());
    s[8..10].copy_from_slice(&aead_id.to_be_bytes());
    s
}

/// HKDF-Extract(salt, ikm parts concatenated).
fn extract(salt: &[u8], ikm: &[&[u8]]) -> Zeroizing<[u8; NH]> {
    let key = hmac::Key::new(hmac::HMAC_SHA256, salt);
    let mut ctx = hmac::Context::with_key(&key);
    for part in ikm {
        ctx.update(part);
    }
    let mut out = Zeroizing::new([0u8; NH]);
    out.copy_from_slice(ctx.sign().as_ref());
    out
}

/// A PRK as the HMAC key [`expand`] takes (set up once for several expansions).
pub(crate) fn prk_key(prk: &[u8]) -> hmac::Key {
    hmac::Key::new(hmac::HMAC_SHA256, prk)
}

/// HKDF-Expand(prk, info parts concatenated, out.len()), the PRK given as its HMAC key.
pub(crate) fn expand(prk: &hmac::Key, info: &[&[u8]], out: &mut [u8]) -> Result<()> {
    if out.len() > 255 * NH {
        return Err(Error::Internal("hkdf expand length"));
    }
    let mut previous = Zeroizing::new([0u8; NH]);
    for (i, chunk) in out.chunks_mut(NH).enumerate() {
        let mut ctx = hmac::Context::with_key(prk);
        if i > 0 {
            ctx.update(previous.as_ref());
        }
        for part in info {
            ctx.update(part);
        }
        // At most 255 blocks (checked above).
        ctx.update(&[u8::try_from(i + 1).unwrap_or(u8::MAX)]);
        previous.copy_from_slice(ctx.sign().as_ref());
        chunk.copy_from_slice(&previous[..chunk.len()]);
    }
    Ok(())
}

/// HKDF-Extract with the salt in two parts (`enc || response_nonce` of an OHTTP response).
pub(crate) fn hkdf_extract2(salt_a: &[u8], salt_b: &[u8], ikm: &[u8]) -> Zeroizing<[u8; NH]> {
    let mut salt = Zeroizing::new([0u8; 128]);
    let n = salt_a.len() + salt_b.len();
    if n <= salt.len() {
        salt[..salt_a.len()].copy_from_slice(salt_a);
        salt[salt_a.len()..n].copy_from_slice(salt_b);
        extract(&salt[..n], &[ikm])
    } else {
        let mut v = Zeroizing::new(Vec::with_capacity(n));
        v.extend_from_slice(salt_a);
        v.extend_from_slice(salt_b);
        extract(&v, &[ikm])
    }
}

/// `LabeledExtract(salt, label, ikm)`.
fn labeled_extract(suite_id: &[u8], salt: &[u8], label: &[u8], ikm: &[u8]) -> Zeroizing<[u8; NH]> {
    extract(salt, &[LABEL_VERSION, suite_id, label, ikm])
}

/// `LabeledExpand(prk, label, info, L)`.
fn labeled_expand(
    suite_id: &[u8],
    prk: &hmac::Key,
    label: &[u8],
    info: &[u8],
    out: &mut [u8],
) -> Result<()> {
    let len = u16::try_from(out.len())
        .map_err(|_| Error::Internal("hkdf expand length"))?
        .to_be_bytes();
    expand(prk, &[&len, LABEL_VERSION, suite_id, label, info], out)
}

/// RFC 9180 §7.1.3 `DeriveKeyPair(ikm)` for X25519: the private key bytes.
pub(crate) fn derive_private(ikm: &[u8]) -> Result<Zeroizing<[u8; 32]>> {
    let prk = labeled_extract(&KEM_SUITE_ID, b"", b"dkp_prk", ikm);
    let mut sk = Zeroizing::new([0u8; 32]);
    labeled_expand(
        &KEM_SUITE_ID,
        &hmac::Key::new(hmac::HMAC_SHA256, prk.as_ref()),
        b"sk",
        b"",
        sk.as_mut(),
    )?;
    Ok(sk)
}

/// A decoded X25519 private key with its public key. Cloning shares the decoded key.
#[derive(Clone)]
pub struct X25519PrivateKey {
    bytes: Zeroizing<[u8; 32]>,
    public: [u8; 32],
    key: Arc<agreement::PrivateKey>,
}

impl fmt::Debug for X25519PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("X25519PrivateKey(..)")
    }
}

impl X25519PrivateKey {
    /// Decode 32 private key bytes (clamped on use, RFC 7748) and compute the public key once.
    pub(crate) fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let raw: [u8; 32] = bytes.try_into().map_err(|_| Error::InvalidPrivateKey)?;
        let raw = Zeroizing::new(raw);
        let key = agreement::PrivateKey::from_private_key(&agreement::X25519, raw.as_ref())
            .map_err(|_| Error::InvalidPrivateKey)?;
        let public: [u8; 32] = key
            .compute_public_key()
            .map_err(|_| Error::InvalidPrivateKey)?
            .as_ref()
            .try_into()
            .map_err(|_| Error::InvalidPrivateKey)?;
        Ok(Self {
            bytes: raw,
            public,
            key: Arc::new(key),
        })
    }

    /// `DeriveKeyPair(ikm)`.
    pub(crate) fn derive(ikm: &[u8]) -> Result<Self> {
        Self::from_bytes(derive_private(ikm)?.as_ref())
    }

    pub(crate) fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(self.bytes.to_vec())
    }

    pub(crate) fn public_key(&self) -> &[u8; 32] {
        &self.public
    }

    /// `DH(sk, pk)`; fails on an all-zero result (a low-order `pk`).
    fn dh(&self, pk: &[u8]) -> Result<Zeroizing<[u8; 32]>> {
        let mut out = Zeroizing::new([0u8; 32]);
        agreement::agree(
            &self.key,
            agreement::UnparsedPublicKey::new(&agreement::X25519, pk),
            Error::InvalidPublicKey,
            |dh| {
                if dh.len() != 32 {
                    return Err(Error::InvalidPublicKey);
                }
                out.copy_from_slice(dh);
                Ok(())
            },
        )?;
        if out.iter().all(|b| *b == 0) {
            return Err(Error::InvalidPublicKey);
        }
        Ok(out)
    }
}

/// Whether `pk` is an X25519 public key of which DH with a fixed clamped scalar is not all zero,
/// i.e. not of low order (in any encoding).
pub(crate) fn check_public(pk: &[u8]) -> Result<()> {
    if pk.len() != 32 {
        return Err(Error::InvalidPublicKey);
    }
    // Made once per process: decoding a private key computes its public key (a scalar
    // multiplication), which doubled the cost of every check (a KDS or engine start checks a
    // dozen key configurations).
    static PROBE: std::sync::LazyLock<Result<X25519PrivateKey>> =
        std::sync::LazyLock::new(|| X25519PrivateKey::from_bytes(&[0x42; 32]));
    let probe = PROBE.as_ref().map_err(|_| Error::InvalidPrivateKey)?;
    probe.dh(pk).map(|_| ())
}

/// `ExtractAndExpand(dh, kem_context = enc || pkRm)`.
fn extract_and_expand(dh: &[u8; 32], enc: &[u8], pk_r: &[u8]) -> Result<Zeroizing<[u8; 32]>> {
    let eae_prk = labeled_extract(&KEM_SUITE_ID, b"", b"eae_prk", dh);
    let mut ss = Zeroizing::new([0u8; 32]);
    let mut kem_context = [0u8; 64];
    kem_context[..32].copy_from_slice(enc);
    kem_context[32..].copy_from_slice(pk_r);
    labeled_expand(
        &KEM_SUITE_ID,
        &hmac::Key::new(hmac::HMAC_SHA256, eae_prk.as_ref()),
        b"shared_secret",
        &kem_context,
        ss.as_mut(),
    )?;
    Ok(ss)
}

/// Key and nonce length of an AEAD id.
pub(crate) fn aead_algorithm(aead_id: u16) -> Result<&'static aead::Algorithm> {
    match aead_id {
        crate::ohttp::AEAD_AES_128_GCM => Ok(&aead::AES_128_GCM),
        crate::ohttp::AEAD_AES_256_GCM => Ok(&aead::AES_256_GCM),
        other => Err(Error::UnsupportedAead(other)),
    }
}

/// The base-mode context after `KeySchedule`: key, base nonce, exporter secret.
struct Context {
    aead_id: u16,
    suite_id: [u8; 10],
    key: Zeroizing<[u8; 32]>,
    nonce: Zeroizing<[u8; NONCE_LEN]>,
    exporter_secret: Zeroizing<[u8; NH]>,
}

/// `psk_id_hash || info_hash` of the base mode (RFC 9180 §5.1): public values fixed by the suite
/// and `info` (for OHTTP, the key configuration), so each thread computes them once per
/// configuration instead of twice per message.
fn base_mode_hashes(suite_id: &[u8; 10], info: &[u8]) -> [u8; 2 * NH] {
    type Last = Option<([u8; 10], Vec<u8>, [u8; 2 * NH])>;
    thread_local! {
        static LAST: std::cell::RefCell<Last> = const { std::cell::RefCell::new(None) };
    }
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        if let Some((s, i, h)) = last.as_ref()
            && s == suite_id
            && i == info
        {
            return *h;
        }
        let mut h = [0u8; 2 * NH];
        h[..NH].copy_from_slice(labeled_extract(suite_id, b"", b"psk_id_hash", b"").as_ref());
        h[NH..].copy_from_slice(labeled_extract(suite_id, b"", b"info_hash", info).as_ref());
        *last = Some((*suite_id, info.to_vec(), h));
        h
    })
}

fn key_schedule(aead_id: u16, shared_secret: &[u8; 32], info: &[u8]) -> Result<Context> {
    let alg = aead_algorithm(aead_id)?;
    let suite_id = hpke_suite_id(aead_id);
    let mut ksc = [0u8; 1 + 2 * NH];
    ksc[1..].copy_from_slice(&base_mode_hashes(&suite_id, info));
    let secret = labeled_extract(&suite_id, shared_secret, b"secret", b"");
    let prk = hmac::Key::new(hmac::HMAC_SHA256, secret.as_ref());
    let mut key = Zeroizing::new([0u8; 32]);
    labeled_expand(&suite_id, &prk, b"key", &ksc, &mut key[..alg.key_len()])?;
    let mut nonce = Zeroizing::new([0u8; NONCE_LEN]);
    labeled_expand(&suite_id, &prk, b"base_nonce", &ksc, nonce.as_mut())?;
    let mut exporter_secret = Zeroizing::new([0u8; NH]);
    labeled_expand(&suite_id, &prk, b"exp", &ksc, exporter_secret.as_mut())?;
    Ok(Context {
        aead_id,
        suite_id,
        key,
        nonce,
        exporter_secret,
    })
}

impl Context {
    fn aead_key(&self) -> Result<aead::LessSafeKey> {
        let alg = aead_algorithm(self.aead_id)?;
        let unbound = aead::UnboundKey::new(alg, &self.key[..alg.key_len()])
            .map_err(|_| Error::Internal("aead key"))?;
        Ok(aead::LessSafeKey::new(unbound))
    }

    /// `Export(exporter_context, L)`.
    fn export(&self, exporter_context: &[u8], len: usize) -> Result<Zeroizing<Vec<u8>>> {
        let mut out = Zeroizing::new(vec![0u8; len]);
        labeled_expand(
            &self.suite_id,
            &hmac::Key::new(hmac::HMAC_SHA256, self.exporter_secret.as_ref()),
            b"sec",
            exporter_context,
            &mut out,
        )?;
        Ok(out)
    }
}

/// Seal `buf[from..]` in place (sequence number 0) and append the tag.
pub(crate) fn aead_seal_in_place(
    aead_id: u16,
    key: &[u8],
    nonce: [u8; NONCE_LEN],
    aad: &[u8],
    buf: &mut Vec<u8>,
    from: usize,
) -> Result<()> {
    let alg = aead_algorithm(aead_id)?;
    let key = aead::LessSafeKey::new(
        aead::UnboundKey::new(alg, key).map_err(|_| Error::Internal("aead key"))?,
    );
    seal_with(&key, nonce, aad, buf, from)
}

fn seal_with(
    key: &aead::LessSafeKey,
    nonce: [u8; NONCE_LEN],
    aad: &[u8],
    buf: &mut Vec<u8>,
    from: usize,
) -> Result<()> {
    let tag = key
        .seal_in_place_separate_tag(
            aead::Nonce::assume_unique_for_key(nonce),
            aead::Aad::from(aad),
            &mut buf[from..],
        )
        .map_err(|_| Error::Internal("aead seal"))?;
    buf.extend_from_slice(tag.as_ref());
    Ok(())
}

/// Open `ct || tag` into a new buffer.
pub(crate) fn aead_open(
    aead_id: u16,
    key: &[u8],
    nonce: [u8; NONCE_LEN],
    aad: &[u8],
    ct: &[u8],
) -> Result<Vec<u8>> {
    let alg = aead_algorithm(aead_id)?;
    let key = aead::LessSafeKey::new(
        aead::UnboundKey::new(alg, key).map_err(|_| Error::Internal("aead key"))?,
    );
    open_with(&key, nonce, aad, ct)
}

fn open_with(
    key: &aead::LessSafeKey,
    nonce: [u8; NONCE_LEN],
    aad: &[u8],
    ct: &[u8],
) -> Result<Vec<u8>> {
    if ct.len() < TAG_LEN {
        return Err(Error::DecryptionFailed);
    }
    let mut buf = ct.to_vec();
    let len = key
        .open_in_place(
            aead::Nonce::assume_unique_for_key(nonce),
            aead::Aad::from(aad),
            &mut buf,
        )
        .map_err(|_| Error::DecryptionFailed)?
        .len();
    buf.truncate(len);
    Ok(buf)
}

/// What a single-shot seal produced: `enc`, and the exported response secret. The ciphertext
/// was written in place.
pub(crate) struct Sent {
    pub(crate) enc: [u8; 32],
    pub(crate) secret: Zeroizing<Vec<u8>>,
}

/// `SetupBaseR(enc, skR, info)`.
fn setup_r(sk_r: &X25519PrivateKey, enc: &[u8], aead_id: u16, info: &[u8]) -> Result<Context> {
    if enc.len() != 32 {
        return Err(Error::InvalidPublicKey);
    }
    let dh = sk_r.dh(enc)?;
    let ss = extract_and_expand(&dh, enc, sk_r.public_key())?;
    key_schedule(aead_id, &ss, info)
}

/// `SetupBaseS(pkR, info)` done before the message is known: the agreement of the ephemeral key
/// with the recipient's and the key schedule, which do not depend on it. [`Prepared::seal_export`]
/// seals one message with it and is consumed by doing so (sequence number 0, once). `Debug`
/// prints nothing secret.
pub(crate) struct Prepared {
    enc: [u8; 32],
    ctx: Context,
}

impl fmt::Debug for Prepared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Prepared(..)")
    }
}

/// `SetupBaseS(pkR, info)` with the ephemeral key `sk_e`: a [`Prepared`] for the recipient
/// `pk_r`.
pub(crate) fn prepare(
    pk_r: &[u8],
    sk_e: &X25519PrivateKey,
    aead_id: u16,
    info: &[u8],
) -> Result<Prepared> {
    if pk_r.len() != 32 {
        return Err(Error::InvalidPublicKey);
    }
    let dh = sk_e.dh(pk_r)?;
    let enc = *sk_e.public_key();
    let ss = extract_and_expand(&dh, &enc, pk_r)?;
    Ok(Prepared {
        enc,
        ctx: key_schedule(aead_id, &ss, info)?,
    })
}

impl Prepared {
    /// `enc` (the ephemeral public key).
    pub(crate) fn enc(&self) -> &[u8; 32] {
        &self.enc
    }

    /// Seal `buf[from..]` in place with `aad`, append the tag and export `export_len` bytes under
    /// `export_label`.
    pub(crate) fn seal_export(
        self,
        aad: &[u8],
        buf: &mut Vec<u8>,
        from: usize,
        export_label: &[u8],
        export_len: usize,
    ) -> Result<Sent> {
        let (enc, ctx) = self.seal(aad, buf, from)?;
        let secret = ctx.export(export_label, export_len)?;
        Ok(Sent { enc, secret })
    }

    /// Seal `buf[from..]` in place with `aad` (tag appended), using up the preparation: `enc`
    /// and the context, for an export.
    fn seal(self, aad: &[u8], buf: &mut Vec<u8>, from: usize) -> Result<([u8; 32], Context)> {
        seal_with(&self.ctx.aead_key()?, *self.ctx.nonce, aad, buf, from)?;
        Ok((self.enc, self.ctx))
    }
}

/// Single-shot `Seal` (RFC 9180 §6.1, base mode) of `buf[from..]` in place to `pk_r` with the
/// ephemeral key `sk_e`: returns `enc`; the tag is appended.
pub(crate) fn seal_single(
    pk_r: &[u8],
    sk_e: &X25519PrivateKey,
    aead_id: u16,
    info: &[u8],
    aad: &[u8],
    buf: &mut Vec<u8>,
    from: usize,
) -> Result<[u8; 32]> {
    prepare(pk_r, sk_e, aead_id, info)?
        .seal(aad, buf, from)
        .map(|(enc, _)| enc)
}

/// `SetupBaseR(enc, skR, info)`, open `ct` with `aad` and export `export_len` bytes under
/// `export_label`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn open(
    sk_r: &X25519PrivateKey,
    enc: &[u8],
    aead_id: u16,
    info: &[u8],
    aad: &[u8],
    ct: &[u8],
    export_label: &[u8],
    export_len: usize,
) -> Result<(Vec<u8>, Zeroizing<Vec<u8>>)> {
    let (pt, ctx) = open_in(sk_r, enc, aead_id, info, aad, ct)?;
    let secret = ctx.export(export_label, export_len)?;
    Ok((pt, secret))
}

/// `SetupBaseR` and the open of `ct`: the plaintext and the context.
fn open_in(
    sk_r: &X25519PrivateKey,
    enc: &[u8],
    aead_id: u16,
    info: &[u8],
    aad: &[u8],
    ct: &[u8],
) -> Result<(Vec<u8>, Context)> {
    let ctx = setup_r(sk_r, enc, aead_id, info)?;
    let pt = open_with(&ctx.aead_key()?, *ctx.nonce, aad, ct)?;
    Ok((pt, ctx))
}

/// Single-shot `Open` (RFC 9180 §6.1, base mode) of `ct` sealed to `sk_r`'s public key.
pub(crate) fn open_single(
    sk_r: &X25519PrivateKey,
    enc: &[u8],
    aead_id: u16,
    info: &[u8],
    aad: &[u8],
    ct: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    open_in(sk_r, enc, aead_id, info, aad, ct).map(|(pt, _)| Zeroizing::new(pt))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        hex::decode(s).expect("hex")
    }

    /// RFC 5869 A.1 (HKDF-SHA256 basic case).
    #[test]
    fn hkdf_rfc5869_a1() {
        let ikm = [0x0b; 22];
        let salt = unhex("000102030405060708090a0b0c");
        let info = unhex("f0f1f2f3f4f5f6f7f8f9");
        let prk = extract(&salt, &[&ikm]);
        assert_eq!(
            hex::encode(prk.as_ref()),
            "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5"
        );
        let mut okm = [0u8; 42];
        expand(&prk_key(prk.as_ref()), &[&info], &mut okm).expect("expand");
        assert_eq!(
            hex::encode(okm),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
        );
    }

    /// `key: value` pairs of RFC 9180 A.1.1 (hex continuation lines appended), in order.
    fn rfc9180_a11() -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        for line in include_str!("../tests/data/rfc9180-a.1.1.txt")
            .lines()
            .map(str::trim)
        {
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

    /// Our key schedule on the RFC 9180 A.1.1 vector (base, X25519, HKDF-SHA256, AES-128-GCM):
    /// DeriveKeyPair, enc, the first ciphertext and all three exported values.
    #[test]
    fn rfc9180_a_1_1_with_our_key_schedule() {
        let f = rfc9180_a11();
        let get = |name: &str| unhex(&f.iter().find(|(k, _)| k == name).expect(name).1);
        let r = X25519PrivateKey::derive(&get("ikmR")).expect("r");
        assert_eq!(r.public_key().to_vec(), get("pkRm"));
        assert_eq!(r.to_bytes().to_vec(), get("skRm"));
        let e = X25519PrivateKey::derive(&get("ikmE")).expect("e");
        assert_eq!(e.public_key().to_vec(), get("pkEm"));
        let info = get("info");
        let seq0 = f
            .iter()
            .position(|(k, v)| k == "sequence number" && v == "0");
        let seq0 = seq0.expect("seq 0");
        let (pt, aad, ct) = (
            unhex(&f[seq0 + 1].1),
            unhex(&f[seq0 + 2].1),
            unhex(&f[seq0 + 4].1),
        );
        let mut buf = pt.clone();
        let sent = prepare(r.public_key(), &e, crate::ohttp::AEAD_AES_128_GCM, &info)
            .and_then(|p| p.seal_export(&aad, &mut buf, 0, b"", 32))
            .expect("seal");
        assert_eq!(sent.enc.to_vec(), get("enc"));
        assert_eq!(buf, ct);
        assert_eq!(sent.secret.to_vec(), get("exported_value"), "empty context");
        let (opened, _) = open(
            &r,
            &sent.enc,
            crate::ohttp::AEAD_AES_128_GCM,
            &info,
            &aad,
            &ct,
            b"",
            32,
        )
        .expect("open");
        assert_eq!(opened, pt);
        // The other two exports, through the receiver's context.
        let dh = r.dh(&sent.enc).expect("dh");
        let ss = extract_and_expand(&dh, &sent.enc, r.public_key()).expect("ss");
        assert_eq!(ss.to_vec(), get("shared_secret"));
        let ctx = key_schedule(crate::ohttp::AEAD_AES_128_GCM, &ss, &info).expect("ks");
        assert_eq!(ctx.key[..16].to_vec(), get("key"));
        assert_eq!(ctx.nonce.to_vec(), get("base_nonce"));
        assert_eq!(ctx.exporter_secret.to_vec(), get("exporter_secret"));
        let exports: Vec<_> = f
            .iter()
            .enumerate()
            .filter(|(_, (k, _))| k == "exporter_context")
            .map(|(i, (_, v))| (unhex(v), unhex(&f[i + 2].1)))
            .collect();
        assert_eq!(exports.len(), 3);
        for (context, value) in exports {
            assert_eq!(ctx.export(&context, 32).expect("export").to_vec(), value);
        }
    }

    #[test]
    fn rejects_low_order_and_bad_lengths() {
        assert!(matches!(
            check_public(&[0u8; 32]),
            Err(Error::InvalidPublicKey)
        ));
        let mut one = [0u8; 32];
        one[0] = 1;
        assert!(matches!(check_public(&one), Err(Error::InvalidPublicKey)));
        assert!(matches!(
            check_public(&[9u8; 31]),
            Err(Error::InvalidPublicKey)
        ));
        let mut nine = [0u8; 32];
        nine[0] = 9;
        assert!(check_public(&nine).is_ok());
        assert!(matches!(
            X25519PrivateKey::from_bytes(&[1u8; 31]),
            Err(Error::InvalidPrivateKey)
        ));
        let k = X25519PrivateKey::from_bytes(&[7u8; 32]).expect("key");
        let mut buf = b"x".to_vec();
        assert!(
            matches!(
                prepare(&[0u8; 32], &k, 1, b"")
                    .and_then(|p| p.seal_export(b"", &mut buf, 0, b"", 16)),
                Err(Error::InvalidPublicKey)
            ),
            "all-zero pkR"
        );
        assert!(matches!(
            open(&k, &[0u8; 32], 1, b"", b"", &[0u8; 17], b"", 16),
            Err(Error::InvalidPublicKey)
        ));
        assert!(matches!(
            open(&k, &nine[..31], 1, b"", b"", &[0u8; 17], b"", 16),
            Err(Error::InvalidPublicKey)
        ));
        assert!(
            matches!(
                open(&k, &nine, 1, b"", b"", &[0u8; 15], b"", 16),
                Err(Error::DecryptionFailed)
            ),
            "shorter than a tag"
        );
        assert!(matches!(
            open(&k, &nine, 3, b"", b"", &[0u8; 17], b"", 16),
            Err(Error::UnsupportedAead(3))
        ));
    }

    #[test]
    fn seal_open_round_trip_and_tamper() {
        let r = X25519PrivateKey::derive(b"receiver ikm").expect("r");
        let e = X25519PrivateKey::derive(b"ephemeral ikm").expect("e");
        for aead_id in [1u16, 2] {
            let mut buf = b"hdrhello".to_vec();
            let sent = prepare(r.public_key(), &e, aead_id, b"info")
                .and_then(|p| p.seal_export(b"aad", &mut buf, 3, b"label", 32))
                .expect("seal");
            let ct = &buf[3..];
            let (pt, secret) =
                open(&r, &sent.enc, aead_id, b"info", b"aad", ct, b"label", 32).expect("open");
            assert_eq!(pt, b"hello");
            assert_eq!(*secret, *sent.secret);
            assert!(matches!(
                open(&r, &sent.enc, aead_id, b"infx", b"aad", ct, b"label", 32),
                Err(Error::DecryptionFailed)
            ));
            assert!(matches!(
                open(&r, &sent.enc, aead_id, b"info", b"aax", ct, b"label", 32),
                Err(Error::DecryptionFailed)
            ));
            let mut bad = ct.to_vec();
            bad[0] ^= 1;
            assert!(matches!(
                open(&r, &sent.enc, aead_id, b"info", b"aad", &bad, b"label", 32),
                Err(Error::DecryptionFailed)
            ));
        }
    }
}
