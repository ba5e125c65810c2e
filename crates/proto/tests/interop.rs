//! Interoperability with the `ohttp` crate (0.8, on the same hpke 0.14), in both directions.
//!
//! `ohttp` cannot load a given private key, so "our client → its server" encapsulates to a key
//! configuration that `ohttp` generated, and "its client → our server" encapsulates to a key
//! configuration that we derived. Everything crosses as bytes.

mod common;

use clave_proto::KeyPurpose;
use clave_proto::ohttp::{KeyConfig, client_encapsulate, server_decapsulate};

#[test]
fn our_client_their_server() {
    let mut rng = common::rng();
    let theirs = ohttp::KeyConfig::new(
        5,
        ohttp::hpke::Kem::X25519Sha256,
        vec![ohttp::SymmetricSuite::new(
            ohttp::hpke::Kdf::HkdfSha256,
            ohttp::hpke::Aead::Aes128Gcm,
        )],
    )
    .expect("their config");
    let config_bytes = theirs.encode().expect("encode");
    let server = ohttp::Server::new(theirs).expect("server");

    let ours = KeyConfig::decode(&config_bytes).expect("our decoder reads their config");
    assert_eq!(ours.encode(), config_bytes);
    let (enc_request, ctx) = client_encapsulate(&ours, b"request bytes", &mut rng).expect("enc");
    let (request, responder) = server.decapsulate(&enc_request).expect("they decapsulate");
    assert_eq!(request, b"request bytes");
    let enc_response = responder
        .encapsulate(b"response bytes")
        .expect("they respond");
    assert_eq!(ctx.open(&enc_response).expect("we open"), b"response bytes");
}

#[test]
fn their_client_our_server() {
    let mut rng = common::rng();
    let key = common::derived(KeyPurpose::Invoke, 1)
        .server_key()
        .expect("server key");
    let config_bytes = key.config().encode();
    let list = KeyConfig::encode_list(std::slice::from_ref(key.config()));

    for client in [
        ohttp::ClientRequest::from_encoded_config(&config_bytes).expect("their client"),
        ohttp::ClientRequest::from_encoded_config_list(&list).expect("their client (list)"),
    ] {
        let (enc_request, response_ctx) = client.encapsulate(b"hello").expect("they encapsulate");
        let (request, ctx) =
            server_decapsulate(std::slice::from_ref(&key), &enc_request).expect("we decapsulate");
        assert_eq!(request, b"hello");
        let enc_response = ctx.encapsulate(b"world", &mut rng).expect("we respond");
        assert_eq!(
            response_ctx.decapsulate(&enc_response).expect("they open"),
            b"world"
        );
    }
}

#[test]
fn their_config_list_decodes() {
    let a = ohttp::KeyConfig::new(
        1,
        ohttp::hpke::Kem::X25519Sha256,
        vec![
            ohttp::SymmetricSuite::new(
                ohttp::hpke::Kdf::HkdfSha256,
                ohttp::hpke::Aead::ChaCha20Poly1305,
            ),
            ohttp::SymmetricSuite::new(ohttp::hpke::Kdf::HkdfSha256, ohttp::hpke::Aead::Aes128Gcm),
        ],
    )
    .expect("config");
    let list = ohttp::KeyConfig::encode_list(&[a]).expect("list");
    let ours = KeyConfig::decode_list(&list).expect("decode list");
    assert_eq!(ours.len(), 1);
    // ChaCha20-Poly1305 is listed first but clave selects the AES-128-GCM suite it implements.
    assert_eq!(ours[0].selected_suite().expect("suite").aead, 1);
    assert_eq!(KeyConfig::encode_list(&ours), list);
}
