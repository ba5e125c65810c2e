//! Sealing to AMD SEV-SNP hardware: a key the firmware derives for this guest.
//!
//! The guest asks the AMD secure processor for a key with `MSG_KEY_REQ`, which Linux exposes as
//! the `SNP_GET_DERIVED_KEY` ioctl on `/dev/sev-guest` (`include/uapi/linux/sev-guest.h`). The
//! key is derived from the chip's VCEK and the fields this KDS selects: its **launch
//! measurement** and **guest policy** always, and a **TCB version** floor when one is configured
//! (a firmware rolled back below it cannot derive the key). Another image, another policy or
//! another chip gets another key, so the sealed master secret opens only here.
//! [`SevSnpDerivedKeySealer`] feeds that key (through HKDF, for domain separation) to the shared
//! envelope of [`crate::seal`].
//!
//! The byte layouts below are those of Linux's `include/uapi/linux/sev-guest.h` and of AMD's
//! SEV-SNP firmware ABI specification (`MSG_KEY_REQ` / `MSG_KEY_RSP`); the tests check every
//! field offset and constant against those documented facts and run the sealer against a fake
//! device. The facts, for reference:
//!
//! * `struct snp_derived_key_req` (32 bytes, little-endian, the firmware's `MSG_KEY_REQ`):
//!   `root_key_select` u32 at 0 (0 = VCEK, 1 = VMRK), a reserved u32 at 4 (zero),
//!   `guest_field_select` u64 at 8, `vmpl` u32 at 16, `guest_svn` u32 at 20, `tcb_version` u64
//!   at 24.
//! * `GUEST_FIELD_SELECT` bits: 0 guest policy, 1 image id, 2 family id, 3 measurement, 4 guest
//!   SVN, 5 TCB version.
//! * `struct snp_derived_key_resp`: 64 bytes of `MSG_KEY_RSP`: `status` u32 at 0 (0 = success),
//!   reserved bytes 4..0x20, the 32-byte derived key at 0x20.
//! * `struct snp_guest_request_ioctl` (32 bytes): `msg_version` u8 at 0 (then padding),
//!   `req_data` u64 at 8 and `resp_data` u64 at 16 (user addresses of the request and
//!   response), and at 24 a u64 `exitinfo2` that overlays `fw_error` (u32 at 24) and
//!   `vmm_error` (u32 at 28).
//! * `SNP_GET_DERIVED_KEY` = `_IOWR('S', 0x1, struct snp_guest_request_ioctl)`: direction 3
//!   (read and write) in bits 30..32, size 32 in bits 16..30, type `'S'` in bits 8..16, number 1.
//!
//! The device itself ([`DevSevGuest`]) is behind the `sev-guest` feature, the only place with
//! `unsafe` (one ioctl).

use std::fmt;

use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::Error;
use crate::seal::{Sealer, SealerKind, measurement_binding};

/// `GUEST_FIELD_SELECT` bit: mix in the guest policy.
pub const FIELD_GUEST_POLICY: u64 = 1 << 0;
/// `GUEST_FIELD_SELECT` bit: mix in the image id.
pub const FIELD_IMAGE_ID: u64 = 1 << 1;
/// `GUEST_FIELD_SELECT` bit: mix in the family id.
pub const FIELD_FAMILY_ID: u64 = 1 << 2;
/// `GUEST_FIELD_SELECT` bit: mix in the launch measurement.
pub const FIELD_MEASUREMENT: u64 = 1 << 3;
/// `GUEST_FIELD_SELECT` bit: mix in the guest SVN.
pub const FIELD_GUEST_SVN: u64 = 1 << 4;
/// `GUEST_FIELD_SELECT` bit: mix in the TCB version given in the request.
pub const FIELD_TCB_VERSION: u64 = 1 << 5;

/// Length of `struct snp_derived_key_req`.
pub const DERIVED_KEY_REQ_LEN: usize = 32;
/// Length of `struct snp_derived_key_resp` (the firmware's `MSG_KEY_RSP`).
pub const DERIVED_KEY_RESP_LEN: usize = 64;

/// `struct snp_derived_key_req`: what to derive the key from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DerivedKeyRequest {
    /// 0: the chip's VCEK (what this KDS uses); 1: the VM root key.
    pub root_key_select: u32,
    /// Which guest fields are mixed in (`FIELD_*`).
    pub guest_field_select: u64,
    /// The VMPL to derive for (at least the caller's own).
    pub vmpl: u32,
    /// The guest SVN to mix in (when selected).
    pub guest_svn: u32,
    /// The TCB version to mix in (when selected; at most the platform's committed TCB).
    pub tcb_version: u64,
}

impl DerivedKeyRequest {
    /// The request of a KDS: VCEK, measurement and guest policy; with `tcb_floor`, also that
    /// TCB version.
    pub fn for_kds(vmpl: u32, tcb_floor: Option<u64>) -> Self {
        DerivedKeyRequest {
            root_key_select: 0,
            guest_field_select: FIELD_MEASUREMENT
                | FIELD_GUEST_POLICY
                | if tcb_floor.is_some() {
                    FIELD_TCB_VERSION
                } else {
                    0
                },
            vmpl,
            guest_svn: 0,
            tcb_version: tcb_floor.unwrap_or(0),
        }
    }

    /// The uapi layout: `u32 root_key_select, u32 rsvd, u64 guest_field_select, u32 vmpl,
    /// u32 guest_svn, u64 tcb_version`, little-endian.
    pub fn to_bytes(&self) -> [u8; DERIVED_KEY_REQ_LEN] {
        let mut b = [0u8; DERIVED_KEY_REQ_LEN];
        b[0..4].copy_from_slice(&self.root_key_select.to_le_bytes());
        b[8..16].copy_from_slice(&self.guest_field_select.to_le_bytes());
        b[16..20].copy_from_slice(&self.vmpl.to_le_bytes());
        b[20..24].copy_from_slice(&self.guest_svn.to_le_bytes());
        b[24..32].copy_from_slice(&self.tcb_version.to_le_bytes());
        b
    }
}

/// The key of a `MSG_KEY_RSP`: status (u32 at 0) must be 0; the key is bytes 0x20..0x40.
pub fn derived_key_from_response(
    resp: &[u8; DERIVED_KEY_RESP_LEN],
) -> Result<Zeroizing<[u8; 32]>, Error> {
    let status = u32::from_le_bytes([resp[0], resp[1], resp[2], resp[3]]);
    if status != 0 {
        return Err(Error::Sealing(
            "the SEV-SNP firmware refused the key request",
        ));
    }
    let mut key = Zeroizing::new([0u8; 32]);
    key.copy_from_slice(&resp[32..64]);
    Ok(key)
}

/// `struct snp_guest_request_ioctl` (32 bytes: `u8 msg_version` padded to 8, `u64 req_data`,
/// `u64 resp_data`, `u64 exitinfo2` = firmware error in the low and VMM error in the high half).
#[repr(C)]
#[derive(Debug, Default)]
pub struct SnpGuestRequestIoctl {
    /// Message version (1).
    pub msg_version: u8,
    /// Address of the request.
    pub req_data: u64,
    /// Address of the response.
    pub resp_data: u64,
    /// Firmware (low 32 bits) and VMM (high 32 bits) error codes.
    pub exitinfo2: u64,
}

/// The firmware's (low 32 bits) and the hypervisor's (high 32 bits) error codes of an
/// `exitinfo2`.
pub fn split_exitinfo2(exitinfo2: u64) -> (u32, u32) {
    (exitinfo2 as u32, (exitinfo2 >> 32) as u32)
}

/// `_IOWR('S', 0x1, struct snp_guest_request_ioctl)`.
pub const SNP_GET_DERIVED_KEY: u64 =
    (3 << 30) | ((std::mem::size_of::<SnpGuestRequestIoctl>() as u64) << 16) | (0x53 << 8) | 0x1;

/// Something that answers `SNP_GET_DERIVED_KEY`: `/dev/sev-guest` ([`DevSevGuest`]) or a fake.
pub trait SevGuestDevice: Send + Sync {
    /// Sends the request bytes; returns the 64-byte response or why the call failed.
    fn get_derived_key(
        &self,
        request: &[u8; DERIVED_KEY_REQ_LEN],
    ) -> Result<Zeroizing<[u8; DERIVED_KEY_RESP_LEN]>, Error>;
}

/// A sealer whose key the SEV-SNP firmware derives for this guest (see the module docs).
pub struct SevSnpDerivedKeySealer<D> {
    device: D,
    request: DerivedKeyRequest,
    measurement: Vec<u8>,
}

impl<D> fmt::Debug for SevSnpDerivedKeySealer<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SevSnpDerivedKeySealer")
            .field("request", &self.request)
            .field("measurement", &hex::encode(&self.measurement))
            .finish_non_exhaustive()
    }
}

impl<D: SevGuestDevice> SevSnpDerivedKeySealer<D> {
    /// A sealer over `device` for the KDS whose launch measurement is `measurement` (written in
    /// the envelope header so that another image's blob is refused with a clear error; the key
    /// itself is bound to the measurement by the firmware).
    pub fn new(device: D, request: DerivedKeyRequest, measurement: &[u8]) -> Self {
        SevSnpDerivedKeySealer {
            device,
            request,
            measurement: measurement.to_vec(),
        }
    }
}

impl<D: SevGuestDevice> Sealer for SevSnpDerivedKeySealer<D> {
    fn kind(&self) -> SealerKind {
        SealerKind::SevSnpDerivedKey
    }

    fn measurement_binding(&self) -> [u8; 32] {
        measurement_binding(&self.measurement)
    }

    fn sealing_key(&self) -> Result<Zeroizing<[u8; 32]>, Error> {
        let resp = self.device.get_derived_key(&self.request.to_bytes())?;
        let derived = derived_key_from_response(&resp)?;
        let hk = Hkdf::<Sha256>::new(Some(b"clave/v1/kds-seal/sev-snp"), derived.as_slice());
        let mut key = Zeroizing::new([0u8; 32]);
        hk.expand(&self.request.to_bytes(), key.as_mut_slice())
            .map_err(|_| Error::Sealing("hkdf expand"))?;
        Ok(key)
    }
}

/// `/dev/sev-guest`.
#[cfg(feature = "sev-guest")]
#[derive(Debug)]
pub struct DevSevGuest {
    file: std::fs::File,
}

#[cfg(feature = "sev-guest")]
impl DevSevGuest {
    /// The kernel's device path.
    pub const PATH: &'static str = "/dev/sev-guest";

    /// Opens the device.
    pub fn open(path: &std::path::Path) -> Result<Self, Error> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        Ok(DevSevGuest { file })
    }
}

#[cfg(feature = "sev-guest")]
impl SevGuestDevice for DevSevGuest {
    fn get_derived_key(
        &self,
        request: &[u8; DERIVED_KEY_REQ_LEN],
    ) -> Result<Zeroizing<[u8; DERIVED_KEY_RESP_LEN]>, Error> {
        let mut resp = Zeroizing::new([0u8; DERIVED_KEY_RESP_LEN]);
        sys::get_derived_key(&self.file, request, &mut resp).map_err(|(os, exitinfo2)| {
            let (fw_error, vmm_error) = split_exitinfo2(exitinfo2);
            Error::SevGuestRequest {
                os_error: os.to_string(),
                fw_error,
                vmm_error,
            }
        })?;
        Ok(resp)
    }
}

#[cfg(feature = "sev-guest")]
#[allow(unsafe_code)]
mod sys {
    //! The one ioctl.

    use std::os::fd::AsRawFd;

    use super::{
        DERIVED_KEY_REQ_LEN, DERIVED_KEY_RESP_LEN, SNP_GET_DERIVED_KEY, SnpGuestRequestIoctl,
    };

    /// On failure: the OS error and the ioctl's `exitinfo2`.
    pub(super) fn get_derived_key(
        file: &std::fs::File,
        request: &[u8; DERIVED_KEY_REQ_LEN],
        response: &mut [u8; DERIVED_KEY_RESP_LEN],
    ) -> Result<(), (std::io::Error, u64)> {
        let mut arg = SnpGuestRequestIoctl {
            msg_version: 1,
            req_data: request.as_ptr() as u64,
            resp_data: response.as_mut_ptr() as u64,
            exitinfo2: 0,
        };
        // SAFETY: `arg` holds the addresses of `request` (32 bytes, read by the driver) and
        // `response` (64 bytes, written by the driver), both alive until the call returns; the
        // driver copies them in and out and keeps no pointer. On a file that is not the SEV guest
        // device the call fails with ENOTTY and touches nothing.
        let rc = unsafe { libc::ioctl(file.as_raw_fd(), SNP_GET_DERIVED_KEY as _, &mut arg) };
        if rc < 0 {
            return Err((std::io::Error::last_os_error(), arg.exitinfo2));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{offset_of, size_of};
    use std::sync::Mutex;

    /// A fake `/dev/sev-guest`: checks the request against the uapi layout and answers like the
    /// firmware, with a key that depends on the selected fields (as the real one does).
    struct FakeDevice {
        status: u32,
        chip: u8,
        seen: Mutex<Vec<[u8; DERIVED_KEY_REQ_LEN]>>,
    }

    impl SevGuestDevice for FakeDevice {
        fn get_derived_key(
            &self,
            request: &[u8; DERIVED_KEY_REQ_LEN],
        ) -> Result<Zeroizing<[u8; DERIVED_KEY_RESP_LEN]>, Error> {
            // What the firmware requires of a request (see the module docs).
            let u32_at = |o: usize| u32::from_le_bytes(request[o..o + 4].try_into().expect("4"));
            let u64_at = |o: usize| u64::from_le_bytes(request[o..o + 8].try_into().expect("8"));
            assert!(u32_at(0) <= 1, "root_key_select is 0 (VCEK) or 1 (VMRK)");
            assert_eq!(u32_at(4), 0, "the reserved word is zero");
            assert_eq!(u64_at(8) >> 6, 0, "only the six documented field bits");
            assert!(u32_at(16) <= 3, "vmpl is 0..=3");
            self.seen.lock().expect("lock").push(*request);
            let mut resp = Zeroizing::new([0u8; DERIVED_KEY_RESP_LEN]);
            resp[0..4].copy_from_slice(&self.status.to_le_bytes());
            for (i, b) in resp[32..64].iter_mut().enumerate() {
                *b = self.chip ^ request[i % 32] ^ (i as u8);
            }
            Ok(resp)
        }
    }

    fn fake(status: u32, chip: u8) -> FakeDevice {
        FakeDevice {
            status,
            chip,
            seen: Mutex::new(Vec::new()),
        }
    }

    #[test]
    fn ioctl_struct_and_number_match_the_uapi() {
        assert_eq!(size_of::<SnpGuestRequestIoctl>(), 32);
        assert_eq!(offset_of!(SnpGuestRequestIoctl, msg_version), 0);
        assert_eq!(offset_of!(SnpGuestRequestIoctl, req_data), 8);
        assert_eq!(offset_of!(SnpGuestRequestIoctl, resp_data), 16);
        assert_eq!(offset_of!(SnpGuestRequestIoctl, exitinfo2), 24);
        assert_eq!(SNP_GET_DERIVED_KEY, 0xC020_5301);
    }

    #[test]
    fn field_select_bits_and_response_layout_match_the_abi() {
        assert_eq!(
            [
                FIELD_GUEST_POLICY,
                FIELD_IMAGE_ID,
                FIELD_FAMILY_ID,
                FIELD_MEASUREMENT,
                FIELD_GUEST_SVN,
                FIELD_TCB_VERSION
            ],
            [1, 2, 4, 8, 16, 32]
        );
        assert_eq!((DERIVED_KEY_REQ_LEN, DERIVED_KEY_RESP_LEN), (32, 64));
        // MSG_KEY_RSP: status at 0, reserved to 0x20, the key at 0x20..0x40. Reserved bytes do
        // not reach the key; a non-zero status is an error, never a key.
        let mut resp = [0xEEu8; DERIVED_KEY_RESP_LEN];
        resp[0..4].copy_from_slice(&0u32.to_le_bytes());
        for (i, b) in resp[0x20..0x40].iter_mut().enumerate() {
            *b = i as u8;
        }
        let key = derived_key_from_response(&resp).expect("status 0");
        assert_eq!(
            key.as_slice(),
            &std::array::from_fn::<u8, 32, _>(|i| i as u8)
        );
        for status in [1u32, 0x16, 0x100, u32::MAX] {
            resp[0..4].copy_from_slice(&status.to_le_bytes());
            assert!(matches!(
                derived_key_from_response(&resp),
                Err(Error::Sealing(_))
            ));
        }
        // exitinfo2: firmware error in the low half, hypervisor error in the high half.
        assert_eq!(split_exitinfo2(0x0000_0002_0000_0016), (0x16, 2));
    }

    #[test]
    fn request_bytes_follow_the_documented_layout() {
        let r = DerivedKeyRequest {
            root_key_select: 0x0102_0304,
            guest_field_select: 0x1112_1314_1516_1718,
            vmpl: 0x2122_2324,
            guest_svn: 0x3132_3334,
            tcb_version: 0x4142_4344_4546_4748,
        };
        let b = r.to_bytes();
        assert_eq!(&b[0..4], &[4, 3, 2, 1]);
        assert_eq!(&b[4..8], &[0; 4], "rsvd");
        assert_eq!(&b[8..16], &[0x18, 0x17, 0x16, 0x15, 0x14, 0x13, 0x12, 0x11]);
        assert_eq!(&b[16..20], &[0x24, 0x23, 0x22, 0x21]);
        assert_eq!(&b[20..24], &[0x34, 0x33, 0x32, 0x31]);
        assert_eq!(
            &b[24..32],
            &[0x48, 0x47, 0x46, 0x45, 0x44, 0x43, 0x42, 0x41]
        );
        // The KDS's own request: VCEK, measurement + policy, and the TCB only with a floor.
        let k = DerivedKeyRequest::for_kds(0, None);
        assert_eq!(k.root_key_select, 0);
        assert_eq!(k.guest_field_select, FIELD_MEASUREMENT | FIELD_GUEST_POLICY);
        let t = DerivedKeyRequest::for_kds(2, Some(0x1234));
        assert_eq!(t.guest_field_select & FIELD_TCB_VERSION, FIELD_TCB_VERSION);
        assert_eq!((t.vmpl, t.tcb_version), (2, 0x1234));
    }

    #[test]
    fn seals_through_the_device_and_refuses_firmware_errors() {
        let m = [7u8; 48];
        let sealer =
            SevSnpDerivedKeySealer::new(fake(0, 1), DerivedKeyRequest::for_kds(0, None), &m);
        let mut rng = rand_core::UnwrapErr(rand::rngs::SysRng);
        let blob = sealer.seal(b"master", &mut rng).expect("seal");
        assert_eq!(blob[9], SealerKind::SevSnpDerivedKey.tag());
        assert_eq!(sealer.unseal(&blob).expect("unseal").as_slice(), b"master");
        let seen = sealer.device.seen.lock().expect("lock").clone();
        assert!(
            seen.iter()
                .all(|r| *r == DerivedKeyRequest::for_kds(0, None).to_bytes())
        );
        // Another chip (another derived key) cannot open it.
        let other =
            SevSnpDerivedKeySealer::new(fake(0, 2), DerivedKeyRequest::for_kds(0, None), &m);
        assert!(matches!(
            other.unseal(&blob),
            Err(Error::SealedStateCorrupt)
        ));
        // A firmware error is an error, never a zero key.
        let failing =
            SevSnpDerivedKeySealer::new(fake(0x16, 1), DerivedKeyRequest::for_kds(0, None), &m);
        assert!(matches!(
            failing.seal(b"x", &mut rng),
            Err(Error::Sealing(_))
        ));
        // The simulated sealer cannot open it either (kind in the header).
        let sim = crate::InsecureSimulatedSealer::new(&m);
        assert!(matches!(
            sim.unseal(&blob),
            Err(Error::SealerKindMismatch { .. })
        ));
    }
}
