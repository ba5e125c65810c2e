//! Attester for the AWS Nitro Secure Module (`/dev/nsm`).
//!
//! The NSM speaks CBOR over one ioctl: the request `{"Attestation": {"user_data": bytes,
//! "nonce": null, "public_key": null}}` is answered by `{"Attestation": {"document": bytes}}`
//! or `{"Error": "<code>"}`. The codec is ours (see [`encode_attestation_request`] and
//! [`decode_attestation_response`]); the transport is a trait so the attester is tested without
//! the device. [`NsmDevice`] is the real transport; it is the only code in this crate that uses
//! `unsafe` (one `ioctl` call, in a private module).

use std::path::PathBuf;

use crate::Error;
use crate::attester::Attester;
use crate::cbor::{self, Value, put_bytes, put_head, put_null, put_text};
use crate::evidence::Evidence;
use crate::nitro::NitroDocument;
use crate::types::{Measurement, ReportData, TeeKind};

/// The NSM device path.
pub const DEFAULT_NSM_DEVICE: &str = "/dev/nsm";
/// Largest NSM response (the driver's limit).
pub const NSM_RESPONSE_MAX: usize = 0x3000;

/// Sends one CBOR request to the NSM and returns its CBOR response.
pub trait NsmTransport {
    /// One request/response exchange.
    fn call(&self, request: &[u8]) -> Result<Vec<u8>, Error>;
}

/// Encodes an attestation request carrying `report_data` as `user_data`.
pub fn encode_attestation_request(report_data: &ReportData) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    put_head(&mut out, 5, 1);
    put_text(&mut out, "Attestation");
    put_head(&mut out, 5, 3);
    put_text(&mut out, "user_data");
    put_bytes(&mut out, report_data.as_bytes());
    put_text(&mut out, "nonce");
    put_null(&mut out);
    put_text(&mut out, "public_key");
    put_null(&mut out);
    out
}

/// Decodes the NSM's answer to an attestation request into the raw document.
pub fn decode_attestation_response(bytes: &[u8]) -> Result<Vec<u8>, Error> {
    let v = cbor::decode(bytes)?;
    if let Some(code) = v.get("Error") {
        return Err(Error::Attester(format!(
            "NSM refused the request: {}",
            code.as_text().unwrap_or("(non-text error code)")
        )));
    }
    match v.get("Attestation").and_then(|a| a.get("document")) {
        Some(Value::Bytes(doc)) => Ok(doc.clone()),
        _ => Err(Error::Malformed {
            what: "NSM response",
            reason: "no Attestation.document",
        }),
    }
}

/// The Nitro NSM attester.
#[derive(Debug)]
pub struct NitroNsmAttester<T = NsmDevice> {
    transport: T,
    measurement: Measurement,
}

impl NitroNsmAttester<NsmDevice> {
    /// Opens the NSM device at `path` (normally [`DEFAULT_NSM_DEVICE`]) and probes it once.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, Error> {
        NitroNsmAttester::with_transport(NsmDevice::new(path))
    }
}

impl<T: NsmTransport> NitroNsmAttester<T> {
    /// Uses `transport`, probing it once (all-zero report data) to learn the measurement (PCR0).
    pub fn with_transport(transport: T) -> Result<Self, Error> {
        let mut a = NitroNsmAttester {
            transport,
            measurement: Measurement(Vec::new()),
        };
        let doc = a.document(&ReportData::ZERO)?;
        a.measurement = doc.claims_unverified()?.measurement;
        Ok(a)
    }

    fn document(&self, report_data: &ReportData) -> Result<NitroDocument, Error> {
        let raw = self.raw_document(report_data)?;
        NitroDocument::parse(&raw)
    }

    fn raw_document(&self, report_data: &ReportData) -> Result<Vec<u8>, Error> {
        let resp = self
            .transport
            .call(&encode_attestation_request(report_data))?;
        decode_attestation_response(&resp)
    }
}

impl<T: NsmTransport> Attester for NitroNsmAttester<T> {
    fn kind(&self) -> TeeKind {
        TeeKind::Nitro
    }

    fn attest(&self, report_data: &ReportData) -> Result<Evidence, Error> {
        let raw = self.raw_document(report_data)?;
        let doc = NitroDocument::parse(&raw)?;
        if !doc.claims_unverified()?.report_data.ct_eq(report_data) {
            return Err(Error::Attester(
                "NSM returned a document for other user data".into(),
            ));
        }
        Ok(Evidence::Nitro { document: raw })
    }

    fn measurement(&self) -> Measurement {
        self.measurement.clone()
    }
}

/// The real NSM device transport.
#[derive(Clone, Debug)]
pub struct NsmDevice {
    path: PathBuf,
}

impl NsmDevice {
    /// A transport for the device at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        NsmDevice { path: path.into() }
    }
}

impl NsmTransport for NsmDevice {
    fn call(&self, request: &[u8]) -> Result<Vec<u8>, Error> {
        let io = |source| Error::AttesterIo {
            what: self.path.display().to_string(),
            source,
        };
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&self.path)
            .map_err(io)?;
        let mut response = vec![0u8; NSM_RESPONSE_MAX];
        let n = sys::request(&file, request, &mut response).map_err(io)?;
        response.truncate(n);
        Ok(response)
    }
}

#[allow(unsafe_code)]
mod sys {
    //! The one `ioctl` the NSM driver offers.

    use std::fs::File;
    use std::io;
    use std::os::fd::AsRawFd;

    /// `struct nsm_message` from the driver: request and response buffers.
    #[repr(C)]
    pub(super) struct NsmMessage {
        request: libc::iovec,
        response: libc::iovec,
    }

    /// `_IOWR(0x0A, 0, struct nsm_message)`.
    pub(super) const NSM_IOCTL_REQUEST: u64 =
        (3 << 30) | ((std::mem::size_of::<NsmMessage>() as u64) << 16) | (0x0A << 8);

    /// Sends `request` and fills `response`; returns the response length.
    pub(super) fn request(file: &File, request: &[u8], response: &mut [u8]) -> io::Result<usize> {
        let mut msg = NsmMessage {
            request: libc::iovec {
                iov_base: request.as_ptr() as *mut libc::c_void,
                iov_len: request.len(),
            },
            response: libc::iovec {
                iov_base: response.as_mut_ptr().cast(),
                iov_len: response.len(),
            },
        };
        // SAFETY: `msg` points at two buffers that live until the call returns: `request`
        // (which the driver only reads, despite the `*mut` that iovec requires) and `response`
        // (writable, `iov_len` bytes). The driver writes at most `iov_len` bytes into the
        // response and updates `iov_len`; it does not keep the pointers. On a file that is not
        // the NSM the call fails with ENOTTY and touches nothing.
        let rc = unsafe { libc::ioctl(file.as_raw_fd(), NSM_IOCTL_REQUEST as _, &mut msg) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(msg.response.iov_len.min(response.len()))
    }

    #[cfg(all(test, target_pointer_width = "64"))]
    #[test]
    fn ioctl_number_matches_the_driver() {
        assert_eq!(NSM_IOCTL_REQUEST, 0xC020_0A00);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nitro::tests::synthetic_document;

    /// A fake NSM answering with a fixed response and checking the request it gets.
    #[derive(Debug)]
    struct FakeNsm {
        echo_user_data: bool,
        response: Option<Vec<u8>>,
    }

    impl NsmTransport for FakeNsm {
        fn call(&self, request: &[u8]) -> Result<Vec<u8>, Error> {
            if let Some(r) = &self.response {
                return Ok(r.clone());
            }
            let req = cbor::decode(request)?;
            let ud = req
                .get("Attestation")
                .and_then(|a| a.get("user_data"))
                .and_then(Value::as_bytes)
                .expect("request carries user_data")
                .to_vec();
            let ud = if self.echo_user_data {
                ud
            } else {
                vec![0xee; 64]
            };
            let mut out = Vec::new();
            put_head(&mut out, 5, 1);
            put_text(&mut out, "Attestation");
            put_head(&mut out, 5, 1);
            put_text(&mut out, "document");
            put_bytes(&mut out, &synthetic_document(Some(&ud), 0x11));
            Ok(out)
        }
    }

    #[test]
    fn attests_through_a_fake_nsm() {
        let a = NitroNsmAttester::with_transport(FakeNsm {
            echo_user_data: true,
            response: None,
        })
        .expect("probe");
        assert_eq!(a.kind(), TeeKind::Nitro);
        assert_eq!(a.measurement(), Measurement(vec![0x11; 48]));
        let rd = ReportData([0x3c; 64]);
        let ev = a.attest(&rd).expect("attest");
        let Evidence::Nitro { document } = &ev else {
            panic!("not nitro: {ev:?}");
        };
        let claims = NitroDocument::parse(document)
            .expect("parse")
            .claims_unverified()
            .expect("claims");
        assert_eq!(claims.report_data, rd);
        // Not trusted yet: verification of Nitro is a later issue.
        assert!(matches!(
            crate::verify_evidence(&ev),
            Err(Error::Unsupported(TeeKind::Nitro))
        ));
    }

    #[test]
    fn document_for_other_user_data_is_refused() {
        let a = NitroNsmAttester {
            transport: FakeNsm {
                echo_user_data: false,
                response: None,
            },
            measurement: Measurement(vec![1]),
        };
        assert!(matches!(
            a.attest(&ReportData([1; 64])),
            Err(Error::Attester(_))
        ));
    }

    #[test]
    fn nsm_errors_and_garbage() {
        let mut err = Vec::new();
        put_head(&mut err, 5, 1);
        put_text(&mut err, "Error");
        put_text(&mut err, "InvalidArgument");
        for (resp, want_attester) in [(err, true), (vec![0xa0], false), (vec![0xff], false)] {
            let r = NitroNsmAttester::with_transport(FakeNsm {
                echo_user_data: true,
                response: Some(resp),
            });
            match r {
                Err(Error::Attester(_)) => assert!(want_attester),
                Err(Error::Malformed { .. }) => assert!(!want_attester),
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    #[test]
    fn request_encoding_is_stable() {
        let req = encode_attestation_request(&ReportData([0xab; 64]));
        let v = cbor::decode(&req).expect("decode");
        let att = v.get("Attestation").expect("Attestation");
        assert_eq!(
            att.get("user_data").and_then(Value::as_bytes),
            Some(&[0xab; 64][..])
        );
        assert_eq!(att.get("nonce"), Some(&Value::Null));
        assert_eq!(att.get("public_key"), Some(&Value::Null));
        // Byte-exact prefix: map(1) text(11) "Attestation" map(3) text(9) "user_data" bytes(64).
        assert_eq!(&req[..2], &[0xa1, 0x6b]);
        assert_eq!(&req[13..15], &[0xa3, 0x69]);
        assert_eq!(&req[24..26], &[0x58, 0x40]);
    }

    #[test]
    fn device_on_a_fake_filesystem() {
        let dir = tempfile::tempdir().expect("tempdir");
        // No device at all.
        assert!(matches!(
            NitroNsmAttester::open(dir.path().join("nsm")),
            Err(Error::AttesterIo { .. })
        ));
        // A regular file is not the NSM: the ioctl fails cleanly (ENOTTY).
        let fake = dir.path().join("nsm");
        std::fs::write(&fake, b"").expect("write");
        match NitroNsmAttester::open(&fake) {
            Err(Error::AttesterIo { source, .. }) => {
                assert_eq!(source.raw_os_error(), Some(libc::ENOTTY));
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
