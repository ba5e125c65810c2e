//! Shared fixtures for the boundary tests.
#![allow(dead_code)]

use clave_attest::{Measurement, Policy};
use clave_proto::code::{Limits, Manifest};
use clave_proto::derive::{self, DerivedKey};
use clave_proto::{CodeHash, KeyPurpose, KeySpec, MasterSecret};
use rand::SeedableRng;
use rand::rngs::StdRng;

pub fn rng() -> StdRng {
    StdRng::seed_from_u64(7)
}

pub fn master() -> MasterSecret {
    MasterSecret::from_bytes([0x11; 32])
}

pub fn policy() -> Policy {
    Policy::insecure_dev([Measurement(vec![0xab; 48])]).expect("dev policy")
}

pub fn spec(purpose: KeyPurpose, epoch: u64) -> KeySpec {
    KeySpec::new(purpose, policy(), epoch)
}

pub fn derived(purpose: KeyPurpose, epoch: u64) -> DerivedKey {
    derive::derive_key(&master(), &spec(purpose, epoch)).expect("derive")
}

pub const CODE: &[u8] = b"export default { async fetch(r) { return new Response('hi') } }";

pub fn manifest_bytes(code: &[u8]) -> Vec<u8> {
    Manifest {
        vars: Default::default(),
        secrets: Vec::new(),
        log_key: None,
        name: "hello".parse().expect("name"),
        project: None,
        code_hash: CodeHash::of(code),
        entry: "index.js".to_owned(),
        limits: Limits::default(),
        created: 1_700_000_000,
        outbound: Vec::new(),
    }
    .to_bytes()
}
