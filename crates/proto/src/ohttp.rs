//! Oblivious HTTP (RFC 9458), written for clave.
//!
//! Key configurations and their list codec (`application/ohttp-keys`), request encapsulation
//! and decapsulation, and response encapsulation (HPKE export, HKDF, AEAD). DHKEM(X25519), the
//! suite of every call, runs on our HPKE key schedule over `aws-lc-rs` primitives
//! (`hpke_x25519`); X-Wing on `hpke` 0.14. Randomness is injected; nothing here performs I/O. Replay protection is the caller's job: the
//! encapsulated key `enc` of each request ([`ServerResponseContext::enc`]) is unique per request.

use std::fmt;

use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};
use rand_core::CryptoRng;
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::hpke_x25519 as x25519;
pub use crate::hpke_x25519::X25519PrivateKey;
use crate::types::KeyId;

mod key_config;
mod response;

pub use key_config::KeyConfig;
use response::ResponseKeying;
pub use response::{ClientResponseContext, ServerResponseContext};

/// `message/bhttp request`: the HPKE info label of encapsulated requests (RFC 9458 §4.3).
pub const LABEL_REQUEST: &[u8] = b"message/bhttp request";
/// `message/bhttp response`: the export label of encapsulated responses (RFC 9458 §4.4).
pub const LABEL_RESPONSE: &[u8] = b"message/bhttp response";
/// Media type of a key configuration list.
pub const MEDIA_TYPE_KEYS: &str = "application/ohttp-keys";
/// Media type of an encapsulated request.
pub const MEDIA_TYPE_REQUEST: &str = "message/ohttp-req";
/// Media type of an encapsulated response.
pub const MEDIA_TYPE_RESPONSE: &str = "message/ohttp-res";

/// HPKE KDF id of HKDF-SHA256, the only KDF clave implements.
pub const KDF_HKDF_SHA256: u16 = 0x0001;
/// HPKE AEAD id of AES-128-GCM (the default).
pub const AEAD_AES_128_GCM: u16 = 0x0001;
/// HPKE AEAD id of AES-256-GCM.
pub const AEAD_AES_256_GCM: u16 = 0x0002;

/// Length of the request header: key id, KEM id, KDF id, AEAD id.
pub const REQUEST_HEADER_LEN: usize = 7;
const TAG_LEN: usize = 16;
const NONCE_LEN: usize = 12;

/// The KEMs clave implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Kem {
    /// DHKEM(X25519, HKDF-SHA256), id 0x0020 — the default.
    X25519HkdfSha256,
    /// X-Wing (ML-KEM-768 + X25519), id 0x647a — post-quantum option.
    XWing,
}

impl Kem {
    /// The HPKE KEM identifier.
    #[must_use]
    pub fn id(self) -> u16 {
        match self {
            Self::X25519HkdfSha256 => hpke::kem::X25519HkdfSha256::KEM_ID,
            Self::XWing => hpke::kem::XWing::KEM_ID,
        }
    }

    /// Look up a KEM by identifier.
    pub fn from_id(id: u16) -> Result<Self> {
        match id {
            0x0020 => Ok(Self::X25519HkdfSha256),
            0x647a => Ok(Self::XWing),
            other => Err(Error::UnsupportedKem(other)),
        }
    }

    /// `Npk`: length of a serialised public key.
    #[must_use]
    pub fn public_key_len(self) -> usize {
        match self {
            Self::X25519HkdfSha256 => 32,
            Self::XWing => <hpke::kem::XWing as hpke::Kem>::PublicKey::size(),
        }
    }

    /// `Nenc`: length of an encapsulated key.
    #[must_use]
    pub fn enc_len(self) -> usize {
        match self {
            Self::X25519HkdfSha256 => 32,
            Self::XWing => <hpke::kem::XWing as hpke::Kem>::EncappedKey::size(),
        }
    }
}

/// One (KDF, AEAD) pair of a key configuration, kept as the raw identifiers so that
/// configurations listing suites clave does not implement still round-trip.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SymmetricSuite {
    /// HPKE KDF id.
    pub kdf: u16,
    /// HPKE AEAD id.
    pub aead: u16,
}

impl SymmetricSuite {
    /// HKDF-SHA256 / AES-128-GCM, the default suite.
    pub const DEFAULT: Self = Self {
        kdf: KDF_HKDF_SHA256,
        aead: AEAD_AES_128_GCM,
    };

    /// Whether clave implements this pair.
    #[must_use]
    pub fn is_supported(self) -> bool {
        self.kdf == KDF_HKDF_SHA256 && matches!(self.aead, AEAD_AES_128_GCM | AEAD_AES_256_GCM)
    }
}

fn aead_key_len(aead: u16) -> Result<usize> {
    match aead {
        AEAD_AES_128_GCM => Ok(16),
        AEAD_AES_256_GCM => Ok(32),
        other => Err(Error::UnsupportedAead(other)),
    }
}

/// max(Nn, Nk): the length of the response nonce and of the exported response secret.
fn response_nonce_len(aead: u16) -> Result<usize> {
    Ok(aead_key_len(aead)?.max(NONCE_LEN))
}

/// Reject all-zero and low-order X25519 public keys (including non-canonical encodings).
///
/// `x25519(k, u)` with a clamped scalar `k` (a multiple of the cofactor 8, non-zero modulo the
/// group order) is the all-zero string exactly when `u` lies in the small-order subgroup.
fn check_x25519_public(pk: &[u8]) -> Result<()> {
    x25519::check_public(pk)
}

fn validate_public_key(kem: Kem, pk: &[u8]) -> Result<()> {
    if pk.len() != kem.public_key_len() {
        return Err(Error::InvalidPublicKey);
    }
    match kem {
        Kem::X25519HkdfSha256 => check_x25519_public(pk),
        Kem::XWing => {
            <hpke::kem::XWing as hpke::Kem>::PublicKey::from_bytes(pk)
                .map_err(|_| Error::InvalidPublicKey)?;
            // The last 32 bytes are the X25519 component.
            check_x25519_public(&pk[pk.len() - 32..])
        }
    }
}

/// A private key for one of the supported KEMs. Zeroized on drop; `Debug` prints no contents.
#[derive(Clone)]
pub enum PrivateKey {
    /// DHKEM(X25519) private scalar (clamped on use), decoded once, with its public key.
    X25519(X25519PrivateKey),
    /// X-Wing decapsulation key (stored as its 32-byte seed).
    XWing(Box<<hpke::kem::XWing as hpke::Kem>::PrivateKey>),
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateKey({:?}, ..)", self.kem())
    }
}

impl PrivateKey {
    /// The KEM of this key.
    #[must_use]
    pub fn kem(&self) -> Kem {
        match self {
            Self::X25519(_) => Kem::X25519HkdfSha256,
            Self::XWing(_) => Kem::XWing,
        }
    }

    /// RFC 9180 `DeriveKeyPair(ikm)` for `kem`.
    ///
    /// # Panics
    /// Never for X25519: every 32-byte string is a private key.
    #[must_use]
    pub fn derive(kem: Kem, ikm: &[u8]) -> Self {
        match kem {
            Kem::X25519HkdfSha256 => Self::X25519(
                X25519PrivateKey::derive(ikm).expect("every 32-byte string is an X25519 key"),
            ),
            Kem::XWing => Self::XWing(Box::new(hpke::kem::XWing::derive_keypair(ikm).0)),
        }
    }

    /// Deserialise (`DeserializePrivateKey`): 32 bytes for X25519, a 32-byte seed for X-Wing.
    pub fn from_bytes(kem: Kem, bytes: &[u8]) -> Result<Self> {
        match kem {
            Kem::X25519HkdfSha256 => X25519PrivateKey::from_bytes(bytes).map(Self::X25519),
            Kem::XWing => <hpke::kem::XWing as hpke::Kem>::PrivateKey::from_bytes(bytes)
                .map(|k| Self::XWing(Box::new(k)))
                .map_err(|_| Error::InvalidPrivateKey),
        }
    }

    /// Serialise (`SerializePrivateKey`). The buffer is zeroized on drop.
    #[must_use]
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        match self {
            Self::X25519(k) => k.to_bytes(),
            Self::XWing(k) => Zeroizing::new(k.to_bytes().to_vec()),
        }
    }

    /// The serialised public key.
    #[must_use]
    pub fn public_key(&self) -> Vec<u8> {
        match self {
            Self::X25519(k) => k.public_key().to_vec(),
            Self::XWing(k) => hpke::kem::XWing::sk_to_pk(k).to_bytes().to_vec(),
        }
    }
}

/// A key configuration together with its private key: what a gateway (the clave engine) holds.
#[derive(Clone)]
pub struct ServerKey {
    config: KeyConfig,
    private: PrivateKey,
}

impl fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerKey")
            .field("config", &self.config)
            .field("private", &self.private)
            .finish()
    }
}

impl ServerKey {
    /// Pair a configuration with its private key; fails with [`Error::InvalidPrivateKey`] when
    /// the private key's public key is not the configuration's.
    pub fn new(config: KeyConfig, private: PrivateKey) -> Result<Self> {
        if private.kem() != config.kem() || private.public_key() != config.public_key() {
            return Err(Error::InvalidPrivateKey);
        }
        Ok(Self { config, private })
    }

    /// The public configuration.
    #[must_use]
    pub fn config(&self) -> &KeyConfig {
        &self.config
    }

    /// The private key.
    #[must_use]
    pub fn private_key(&self) -> &PrivateKey {
        &self.private
    }

    /// Decapsulate a request addressed to this key.
    pub fn decapsulate(&self, enc_request: &[u8]) -> Result<(Vec<u8>, ServerResponseContext)> {
        server_decapsulate(std::slice::from_ref(self), enc_request)
    }
}

/// The request header: key id, KEM, KDF, AEAD.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestHeader {
    /// Key id of the server key.
    pub key_id: KeyId,
    /// HPKE KEM id.
    pub kem: u16,
    /// HPKE KDF id.
    pub kdf: u16,
    /// HPKE AEAD id.
    pub aead: u16,
}

impl RequestHeader {
    /// The header a client sends to `config`, with the suite it selects.
    fn for_config(config: &KeyConfig) -> Result<(Self, SymmetricSuite)> {
        let suite = config.selected_suite()?;
        let header = RequestHeader {
            key_id: config.key_id(),
            kem: config.kem().id(),
            kdf: suite.kdf,
            aead: suite.aead,
        };
        Ok((header, suite))
    }

    /// The 7 header bytes.
    #[must_use]
    pub fn encode(&self) -> [u8; REQUEST_HEADER_LEN] {
        let mut h = [0u8; REQUEST_HEADER_LEN];
        h[0] = self.key_id.0;
        h[1..3].copy_from_slice(&self.kem.to_be_bytes());
        h[3..5].copy_from_slice(&self.kdf.to_be_bytes());
        h[5..7].copy_from_slice(&self.aead.to_be_bytes());
        h
    }

    /// Parse the first 7 bytes of `bytes`.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes);
        let key_id = KeyId(r.u8("request header")?);
        let kem = r.u16("request header")?;
        let kdf = r.u16("request header")?;
        let aead = r.u16("request header")?;
        Ok(Self {
            key_id,
            kem,
            kdf,
            aead,
        })
    }

    /// HPKE `info` for `label`: `label || 0x00 || header`.
    #[must_use]
    pub fn info(&self, label: &[u8]) -> Vec<u8> {
        let mut info = Vec::with_capacity(label.len() + 1 + REQUEST_HEADER_LEN);
        info.extend_from_slice(label);
        info.push(0);
        info.extend_from_slice(&self.encode());
        info
    }
}

/// Output of a single-shot HPKE seal.
pub(crate) struct Sealed {
    pub(crate) header: RequestHeader,
    pub(crate) enc: Vec<u8>,
    pub(crate) ct: Vec<u8>,
    pub(crate) secret: Zeroizing<Vec<u8>>,
}

/// `(enc, ciphertext, exported response secret)`.
type SealOutput = (Vec<u8>, Vec<u8>, Zeroizing<Vec<u8>>);

fn hpke_seal<A: hpke::aead::Aead, K: hpke::Kem>(
    pk: &[u8],
    info: &[u8],
    aad: &[u8],
    pt: &[u8],
    export_len: usize,
    rng: &mut impl CryptoRng,
) -> Result<SealOutput> {
    let pk = K::PublicKey::from_bytes(pk).map_err(|_| Error::InvalidPublicKey)?;
    let (enc, mut ctx) =
        hpke::setup_sender_with_rng::<A, hpke::kdf::HkdfSha256, K>(&OpModeS::Base, &pk, info, rng)
            .map_err(|_| Error::InvalidPublicKey)?;
    let ct = ctx
        .seal(pt, aad)
        .map_err(|_| Error::Internal("hpke seal"))?;
    let mut secret = Zeroizing::new(vec![0u8; export_len]);
    ctx.export(LABEL_RESPONSE, &mut secret)
        .map_err(|_| Error::Internal("hpke export"))?;
    Ok((enc.to_bytes().to_vec(), ct, secret))
}

fn hpke_open<A: hpke::aead::Aead, K: hpke::Kem>(
    sk: &K::PrivateKey,
    enc: &[u8],
    info: &[u8],
    aad: &[u8],
    ct: &[u8],
    export_len: usize,
) -> Result<(Vec<u8>, Zeroizing<Vec<u8>>)> {
    let encapped = K::EncappedKey::from_bytes(enc).map_err(|_| Error::InvalidPublicKey)?;
    // For DHKEM(X25519) decapsulation fails only when the DH output is all zero, i.e. when
    // `enc` is a low-order point.
    let mut ctx =
        hpke::setup_receiver::<A, hpke::kdf::HkdfSha256, K>(&OpModeR::Base, sk, &encapped, info)
            .map_err(|_| Error::InvalidPublicKey)?;
    let pt = ctx.open(ct, aad).map_err(|_| Error::DecryptionFailed)?;
    let mut secret = Zeroizing::new(vec![0u8; export_len]);
    ctx.export(LABEL_RESPONSE, &mut secret)
        .map_err(|_| Error::Internal("hpke export"))?;
    Ok((pt, secret))
}

/// A fresh ephemeral X25519 key: `DeriveKeyPair(random(Nsk))`, as `hpke` draws it (so a fixed
/// RNG reproduces RFC 9180's `ikmE`).
fn x25519_ephemeral(rng: &mut impl CryptoRng) -> Result<X25519PrivateKey> {
    let mut ikm = Zeroizing::new([0u8; 32]);
    rng.fill_bytes(ikm.as_mut());
    X25519PrivateKey::derive(ikm.as_ref())
}

/// Seal `pt` to `config` with `info = label || 0 || header` and `aad`.
pub(crate) fn seal_to_config(
    config: &KeyConfig,
    label: &[u8],
    aad: &[u8],
    pt: &[u8],
    rng: &mut impl CryptoRng,
) -> Result<Sealed> {
    let (header, suite) = RequestHeader::for_config(config)?;
    let info = header.info(label);
    let export_len = response_nonce_len(suite.aead)?;
    let pk = config.public_key();
    use hpke::aead::{AesGcm128, AesGcm256};
    use hpke::kem::XWing;
    let (enc, ct, secret) = match (config.kem(), suite.aead) {
        (Kem::X25519HkdfSha256, aead @ (AEAD_AES_128_GCM | AEAD_AES_256_GCM)) => {
            let sk_e = x25519_ephemeral(rng)?;
            let mut ct = Vec::with_capacity(pt.len() + TAG_LEN);
            ct.extend_from_slice(pt);
            let sent = x25519::prepare(pk, &sk_e, aead, &info)?.seal_export(
                aad,
                &mut ct,
                0,
                LABEL_RESPONSE,
                export_len,
            )?;
            (sent.enc.to_vec(), ct, sent.secret)
        }
        (Kem::XWing, AEAD_AES_128_GCM) => {
            hpke_seal::<AesGcm128, XWing>(pk, &info, aad, pt, export_len, rng)?
        }
        (Kem::XWing, AEAD_AES_256_GCM) => {
            hpke_seal::<AesGcm256, XWing>(pk, &info, aad, pt, export_len, rng)?
        }
        (_, other) => return Err(Error::UnsupportedAead(other)),
    };
    Ok(Sealed {
        header,
        enc,
        ct,
        secret,
    })
}

/// A parsed `header || enc || ct` message, borrowed from its bytes.
pub(crate) struct Parsed<'a> {
    pub(crate) header: RequestHeader,
    pub(crate) enc: &'a [u8],
    pub(crate) ct: &'a [u8],
}

/// Split `header || enc || ct`, checking KEM/KDF/AEAD support and lengths (not the key id).
pub(crate) fn parse_sealed(bytes: &[u8]) -> Result<Parsed<'_>> {
    let header = RequestHeader::decode(bytes)?;
    parse_body(header, &bytes[REQUEST_HEADER_LEN..])
}

/// Split `enc || ct` after an already-read header, checking algorithm support and lengths.
pub(crate) fn parse_body(header: RequestHeader, body: &[u8]) -> Result<Parsed<'_>> {
    let kem = Kem::from_id(header.kem)?;
    if header.kdf != KDF_HKDF_SHA256 {
        return Err(Error::UnsupportedKdf(header.kdf));
    }
    aead_key_len(header.aead)?;
    let mut r = Reader::new(body);
    let enc = r.take(kem.enc_len(), "encapsulated key")?;
    let ct = r.rest();
    if ct.len() < TAG_LEN {
        return Err(Error::Truncated {
            what: "ciphertext",
            needed: TAG_LEN,
            got: ct.len(),
        });
    }
    Ok(Parsed { header, enc, ct })
}

/// Open a parsed message with one key. The caller has matched the key id.
pub(crate) fn open_with_key(
    key: &ServerKey,
    parsed: &Parsed<'_>,
    label: &[u8],
    aad: &[u8],
) -> Result<(Vec<u8>, Zeroizing<Vec<u8>>)> {
    let h = parsed.header;
    if h.kem != key.config.kem().id() {
        return Err(Error::UnsupportedKem(h.kem));
    }
    let suite = SymmetricSuite {
        kdf: h.kdf,
        aead: h.aead,
    };
    if !key.config.suites().contains(&suite) {
        return Err(Error::UnsupportedAead(h.aead));
    }
    let info = h.info(label);
    let export_len = response_nonce_len(h.aead)?;
    use hpke::aead::{AesGcm128, AesGcm256};
    use hpke::kem::XWing;
    let (enc, ct) = (parsed.enc, parsed.ct);
    match (&key.private, h.aead) {
        (PrivateKey::X25519(sk), aead @ (AEAD_AES_128_GCM | AEAD_AES_256_GCM)) => {
            x25519::open(sk, enc, aead, &info, aad, ct, LABEL_RESPONSE, export_len)
        }
        (PrivateKey::XWing(sk), AEAD_AES_128_GCM) => {
            hpke_open::<AesGcm128, XWing>(sk, enc, &info, aad, ct, export_len)
        }
        (PrivateKey::XWing(sk), AEAD_AES_256_GCM) => {
            hpke_open::<AesGcm256, XWing>(sk, enc, &info, aad, ct, export_len)
        }
        (_, other) => Err(Error::UnsupportedAead(other)),
    }
}

/// Pick the keys with the message's key id and try each (more than one only on a key id
/// collision between epochs). Returns the first success, else the last error.
pub(crate) fn open_with_keys(
    keys: &[ServerKey],
    parsed: &Parsed<'_>,
    label: &[u8],
    aad: &[u8],
) -> Result<(Vec<u8>, Zeroizing<Vec<u8>>)> {
    let mut last = Error::UnknownKeyId(parsed.header.key_id.0);
    for key in keys
        .iter()
        .filter(|k| k.config.key_id() == parsed.header.key_id)
    {
        match open_with_key(key, parsed, label, aad) {
            Ok(v) => return Ok(v),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Client side: encapsulate `request` (a BHTTP message) to `config` (RFC 9458 §4.3).
///
/// Returns the encapsulated request (`header || enc || ct`) and the context that opens the
/// response. The ephemeral key comes from `rng`.
pub fn client_encapsulate(
    config: &KeyConfig,
    request: &[u8],
    rng: &mut impl CryptoRng,
) -> Result<(Vec<u8>, ClientResponseContext)> {
    if config.kem() == Kem::X25519HkdfSha256 {
        return x25519_client_encapsulate(config, request, rng);
    }
    let sealed = seal_to_config(config, LABEL_REQUEST, b"", request, rng)?;
    Ok(finish_request(sealed))
}

/// [`client_encapsulate`] for DHKEM(X25519): a fresh ephemeral key from `rng`, then
/// [`x25519_encapsulate_with`].
fn x25519_client_encapsulate(
    config: &KeyConfig,
    request: &[u8],
    rng: &mut impl CryptoRng,
) -> Result<(Vec<u8>, ClientResponseContext)> {
    let sk_e = x25519_ephemeral(rng)?;
    x25519_encapsulate_with(config, &sk_e, request)
}

/// `hdr || enc || ct` for `request` with the ephemeral key `sk_e`, built and sealed in one buffer.
/// The known-answer test drives this with RFC 9458's `skE` (`testing::`), so the RFC bytes check
/// the code every client runs, prepared ahead or not.
fn x25519_encapsulate_with(
    config: &KeyConfig,
    sk_e: &X25519PrivateKey,
    request: &[u8],
) -> Result<(Vec<u8>, ClientResponseContext)> {
    x25519_prepare_with(config, sk_e)?.encapsulate(request)
}

/// A request encapsulation made before its request is known (RFC 9458 §4.3 for DHKEM(X25519)):
/// a fresh ephemeral key, its agreement with the key configuration's public key and the HPKE key
/// schedule. That is a request's X25519 work (~45 µs here), which a client can do while it waits
/// for its previous answer; [`PreparedRequest::encapsulate`] then only seals (AES-GCM) and
/// derives the response secret. It serves one request: encapsulating consumes it. `Debug`
/// prints nothing secret.
#[derive(Debug)]
pub struct PreparedRequest {
    config: KeyConfig,
    header: RequestHeader,
    hpke: x25519::Prepared,
}

/// Prepare the encapsulation of one request to `config` with a fresh ephemeral key from `rng`.
///
/// # Errors
/// [`Error::UnsupportedKem`] for a configuration that is not DHKEM(X25519) (X-Wing requests are
/// sealed whole by [`client_encapsulate`]); [`Error::NoSupportedSuite`]; [`Error::InvalidPublicKey`].
pub fn prepare_request(config: &KeyConfig, rng: &mut impl CryptoRng) -> Result<PreparedRequest> {
    if config.kem() != Kem::X25519HkdfSha256 {
        return Err(Error::UnsupportedKem(config.kem().id()));
    }
    x25519_prepare_with(config, &x25519_ephemeral(rng)?)
}

fn x25519_prepare_with(config: &KeyConfig, sk_e: &X25519PrivateKey) -> Result<PreparedRequest> {
    let (header, suite) = RequestHeader::for_config(config)?;
    let info = header.info(LABEL_REQUEST);
    let hpke = x25519::prepare(config.public_key(), sk_e, suite.aead, &info)?;
    Ok(PreparedRequest {
        config: config.clone(),
        header,
        hpke,
    })
}

impl PreparedRequest {
    /// Whether this was prepared for `config` (a new epoch's key needs a new preparation).
    #[must_use]
    pub fn is_for(&self, config: &KeyConfig) -> bool {
        self.config == *config
    }

    /// The encapsulated key (`enc`) this preparation will send: public, in the clear on the wire.
    #[must_use]
    pub fn enc(&self) -> &[u8] {
        self.hpke.enc()
    }

    /// Encapsulate `request` (a BHTTP message): as [`client_encapsulate`], with the work done
    /// ahead.
    ///
    /// # Errors
    /// [`Error::NoSupportedSuite`] or an internal AEAD failure.
    pub fn encapsulate(self, request: &[u8]) -> Result<(Vec<u8>, ClientResponseContext)> {
        let body = REQUEST_HEADER_LEN + 32;
        let mut out = Vec::with_capacity(body + request.len() + TAG_LEN);
        out.extend_from_slice(&self.header.encode());
        out.extend_from_slice(self.hpke.enc());
        out.extend_from_slice(request);
        let aead = self.header.aead;
        let sent = self.hpke.seal_export(
            b"",
            &mut out,
            body,
            LABEL_RESPONSE,
            response_nonce_len(aead)?,
        )?;
        let ctx = ClientResponseContext(ResponseKeying {
            aead,
            enc: sent.enc.to_vec(),
            secret: sent.secret,
        });
        Ok((out, ctx))
    }
}

fn finish_request(sealed: Sealed) -> (Vec<u8>, ClientResponseContext) {
    let mut out = Vec::with_capacity(REQUEST_HEADER_LEN + sealed.enc.len() + sealed.ct.len());
    out.extend_from_slice(&sealed.header.encode());
    out.extend_from_slice(&sealed.enc);
    out.extend_from_slice(&sealed.ct);
    let ctx = ClientResponseContext(ResponseKeying {
        aead: sealed.header.aead,
        enc: sealed.enc,
        secret: sealed.secret,
    });
    (out, ctx)
}

/// Server side: decapsulate `enc_request`, choosing among `keys` by key id (e.g. the current,
/// next and previous epochs' keys).
pub fn server_decapsulate(
    keys: &[ServerKey],
    enc_request: &[u8],
) -> Result<(Vec<u8>, ServerResponseContext)> {
    let parsed = parse_sealed(enc_request)?;
    let (pt, secret) = open_with_keys(keys, &parsed, LABEL_REQUEST, b"")?;
    let ctx = ServerResponseContext(ResponseKeying {
        aead: parsed.header.aead,
        enc: parsed.enc.to_vec(),
        secret,
    });
    Ok((pt, ctx))
}

/// A bounds-checked big-endian reader.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    pub(crate) fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8]> {
        let got = self.buf.len() - self.pos;
        if got < n {
            return Err(Error::Truncated {
                what,
                needed: n,
                got,
            });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8> {
        Ok(self.take(1, what)?[0])
    }

    pub(crate) fn u16(&mut self, what: &'static str) -> Result<u16> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let s = &self.buf[self.pos..];
        self.pos = self.buf.len();
        s
    }

    pub(crate) fn finish(&self, what: &'static str) -> Result<()> {
        if self.pos < self.buf.len() {
            return Err(Error::TrailingBytes {
                what,
                count: self.buf.len() - self.pos,
            });
        }
        Ok(())
    }
}

/// Test helper: whether `r`, the result of opening a sealed message with one bit flipped at byte
/// `i`, is refused for the reason that byte implies (header field, else authentication).
#[cfg(test)]
pub(crate) fn refused_flip<T>(i: usize, r: &Result<T>) -> bool {
    match i {
        0 => matches!(r, Err(Error::UnknownKeyId(_))),
        1 | 2 => matches!(r, Err(Error::UnsupportedKem(_))),
        3 | 4 => matches!(r, Err(Error::UnsupportedKdf(_))),
        5 | 6 => matches!(r, Err(Error::UnsupportedAead(_))),
        _ => matches!(r, Err(Error::DecryptionFailed)),
    }
}

/// Test-only hooks that make RFC known-answer tests reproducible. Never use them in a service.
#[doc(hidden)]
pub mod testing;
