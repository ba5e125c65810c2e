//! Attester for Linux configfs-tsm (`/sys/kernel/config/tsm/report`): SEV-SNP and TDX guests.
//!
//! Our own small reader (the `configfs-tsm` crate is AGPL). The kernel interface
//! (Documentation/ABI/testing/configfs-tsm-report):
//!
//! 1. `mkdir <root>/<entry>`: the kernel populates the entry with attributes (an existing entry
//!    is reused; the `generation` counter detects other writers);
//! 2. optionally write `privlevel` (SNP VMPL);
//! 3. write up to 64 bytes to `inblob` (the report data);
//! 4. read `generation`, then `outblob` (the SNP report or TDX quote; reading triggers the
//!    request), `auxblob` (SNP: the host's certificate table; may be absent or empty),
//!    `provider` (`sev_guest` or `tdx_guest`), then `generation` again;
//! 5. `rmdir` the entry if we created it.
//!
//! The report is used only if `generation` did not move during the read and the parsed report
//! carries exactly our report data, so a concurrent writer can never hand us someone else's
//! report. The root path is configurable, which is how this module is tested against a fake file
//! system in a temporary directory.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::Error;
use crate::attester::Attester;
use crate::evidence::{Evidence, MAX_EVIDENCE_LEN};
use crate::snp::SnpReport;
use crate::tdx::TdxQuote;
use crate::types::{Measurement, ReportData, TeeKind};

/// Where the kernel mounts configfs-tsm reports.
pub const DEFAULT_TSM_ROOT: &str = "/sys/kernel/config/tsm/report";
/// The default name of the report entry this attester creates.
pub const DEFAULT_ENTRY: &str = "clave";

/// A raw configfs-tsm report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TsmReport {
    /// The provider: [`TeeKind::SevSnp`] for `sev_guest`, [`TeeKind::Tdx`] for `tdx_guest`.
    pub kind: TeeKind,
    /// `outblob`: the SNP report or TDX quote.
    pub outblob: Vec<u8>,
    /// `auxblob`, if present and non-empty (SNP certificate table).
    pub auxblob: Option<Vec<u8>>,
    /// The `generation` value the report belongs to.
    pub generation: u64,
}

impl TsmReport {
    /// Converts the report into [`Evidence`].
    pub fn into_evidence(self) -> Evidence {
        match self.kind {
            TeeKind::SevSnp => Evidence::SevSnp {
                report: self.outblob,
                certs: self.auxblob,
            },
            _ => Evidence::Tdx {
                quote: self.outblob,
            },
        }
    }
}

/// The configfs-tsm attester. [`ConfigfsTsmAttester::open`] probes the device once to learn the
/// TEE kind and the launch measurement.
#[derive(Clone, Debug)]
pub struct ConfigfsTsmAttester {
    root: PathBuf,
    entry: String,
    privlevel: Option<u32>,
    kind: TeeKind,
    measurement: Measurement,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::AttesterIo {
        what: path.display().to_string(),
        source,
    }
}

fn read_limited(path: &Path) -> Result<Vec<u8>, Error> {
    let f = fs::File::open(path).map_err(io_err(path))?;
    let mut out = Vec::new();
    f.take(MAX_EVIDENCE_LEN as u64 + 1)
        .read_to_end(&mut out)
        .map_err(io_err(path))?;
    if out.len() > MAX_EVIDENCE_LEN {
        return Err(Error::TooLarge {
            what: "configfs-tsm blob",
            len: out.len(),
            max: MAX_EVIDENCE_LEN,
        });
    }
    Ok(out)
}

fn write_attr(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    // configfs attributes take one write; no create, no truncate semantics needed.
    let mut f = fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .map_err(io_err(path))?;
    f.write_all(bytes).map_err(io_err(path))
}

fn read_text(path: &Path) -> Result<String, Error> {
    let bytes = read_limited(path)?;
    let s = String::from_utf8(bytes)
        .map_err(|_| Error::Attester(format!("{} is not UTF-8", path.display())))?;
    Ok(s.trim().to_owned())
}

fn read_generation(path: &Path) -> Result<u64, Error> {
    let s = read_text(path)?;
    s.parse()
        .map_err(|_| Error::Attester(format!("{}: not a number: {s:?}", path.display())))
}

/// Parses a `provider` value.
pub fn parse_provider(s: &str) -> Result<TeeKind, Error> {
    match s.trim() {
        "sev_guest" => Ok(TeeKind::SevSnp),
        "tdx_guest" => Ok(TeeKind::Tdx),
        other => Err(Error::Attester(format!(
            "unsupported configfs-tsm provider {other:?}"
        ))),
    }
}

impl ConfigfsTsmAttester {
    /// Opens configfs-tsm at `root` (normally [`DEFAULT_TSM_ROOT`]) with entry name
    /// [`DEFAULT_ENTRY`], and probes it once (with all-zero report data) to learn the TEE kind
    /// and measurement.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, Error> {
        Self::open_with(root, DEFAULT_ENTRY, None)
    }

    /// Like [`ConfigfsTsmAttester::open`] with an explicit entry name (letters, digits, `-`,
    /// `_`; at most 64) and, for SNP, an optional privilege level (VMPL 0 to 3) to request.
    pub fn open_with(
        root: impl Into<PathBuf>,
        entry: &str,
        privlevel: Option<u32>,
    ) -> Result<Self, Error> {
        if entry.is_empty()
            || entry.len() > 64
            || !entry
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(Error::InvalidArgument(
                "configfs-tsm entry name must be 1-64 of [A-Za-z0-9_-]",
            ));
        }
        if privlevel.is_some_and(|p| p > 3) {
            return Err(Error::InvalidArgument("privlevel must be 0 to 3"));
        }
        let root = root.into();
        if !root.is_dir() {
            return Err(Error::AttesterIo {
                what: root.display().to_string(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "configfs-tsm is not available (no TEE guest driver, or configfs not mounted)",
                ),
            });
        }
        let mut a = ConfigfsTsmAttester {
            root,
            entry: entry.to_owned(),
            privlevel,
            kind: TeeKind::SevSnp,
            measurement: Measurement(Vec::new()),
        };
        let probe = a.report(&ReportData::ZERO)?;
        a.kind = probe.kind;
        a.measurement = measurement_of(&probe)?;
        Ok(a)
    }

    /// Requests one report for `report_data` and checks that it is ours.
    pub fn report(&self, report_data: &ReportData) -> Result<TsmReport, Error> {
        let dir = self.root.join(&self.entry);
        let created = match fs::create_dir(&dir) {
            Ok(()) => true,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => false,
            Err(e) => return Err(io_err(&dir)(e)),
        };
        let result = self.report_in(&dir, report_data);
        if created {
            // Best effort: on configfs this removes the entry; a leftover entry is reused.
            let _ = fs::remove_dir(&dir);
        }
        result
    }

    fn report_in(&self, dir: &Path, report_data: &ReportData) -> Result<TsmReport, Error> {
        if let Some(p) = self.privlevel {
            write_attr(&dir.join("privlevel"), p.to_string().as_bytes())?;
        }
        write_attr(&dir.join("inblob"), report_data.as_bytes())?;
        let gen_path = dir.join("generation");
        let generation = read_generation(&gen_path)?;
        let outblob = read_limited(&dir.join("outblob"))?;
        let aux_path = dir.join("auxblob");
        let auxblob = match read_limited(&aux_path) {
            Ok(b) if b.is_empty() => None,
            Ok(b) => Some(b),
            Err(Error::AttesterIo { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                None
            }
            Err(e) => return Err(e),
        };
        let kind = parse_provider(&read_text(&dir.join("provider"))?)?;
        let after = read_generation(&gen_path)?;
        if after != generation {
            return Err(Error::Attester(format!(
                "configfs-tsm entry changed during the request (generation {generation} -> {after}); another writer is using it"
            )));
        }
        let report = TsmReport {
            kind,
            outblob,
            auxblob,
            generation,
        };
        let got = match kind {
            TeeKind::SevSnp => SnpReport::parse(&report.outblob)?.report_data,
            _ => TdxQuote::parse(&report.outblob)?.report_data,
        };
        if !got.ct_eq(report_data) {
            return Err(Error::Attester(
                "configfs-tsm returned a report for other report data".into(),
            ));
        }
        Ok(report)
    }
}

fn measurement_of(report: &TsmReport) -> Result<Measurement, Error> {
    Ok(match report.kind {
        TeeKind::SevSnp => Measurement(SnpReport::parse(&report.outblob)?.measurement.to_vec()),
        _ => Measurement(TdxQuote::parse(&report.outblob)?.mr_td.to_vec()),
    })
}

impl Attester for ConfigfsTsmAttester {
    fn kind(&self) -> TeeKind {
        self.kind
    }

    fn attest(&self, report_data: &ReportData) -> Result<Evidence, Error> {
        let report = self.report(report_data)?;
        if report.kind != self.kind {
            return Err(Error::Attester(format!(
                "configfs-tsm provider changed from {} to {}",
                self.kind, report.kind
            )));
        }
        Ok(report.into_evidence())
    }

    fn measurement(&self) -> Measurement {
        self.measurement.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake configfs-tsm: the entry directory pre-populated with attribute files, as the
    /// kernel would after `mkdir`. Returns the temp dir and the entry path.
    fn fake(
        provider: &str,
        outblob: &[u8],
        auxblob: Option<&[u8]>,
    ) -> (tempfile::TempDir, PathBuf) {
        let root = tempfile::tempdir().expect("tempdir");
        let entry = root.path().join(DEFAULT_ENTRY);
        fs::create_dir(&entry).expect("mkdir");
        fs::write(entry.join("inblob"), b"").expect("inblob");
        fs::write(entry.join("generation"), b"3\n").expect("generation");
        fs::write(entry.join("provider"), format!("{provider}\n")).expect("provider");
        fs::write(entry.join("outblob"), outblob).expect("outblob");
        if let Some(a) = auxblob {
            fs::write(entry.join("auxblob"), a).expect("auxblob");
        }
        (root, entry)
    }

    fn snp_report(rd: &ReportData) -> Vec<u8> {
        let mut r = crate::snp::tests::synthetic_report();
        r[0x50..0x90].copy_from_slice(rd.as_bytes());
        r
    }

    #[test]
    fn snp_guest_round_trip() {
        // The static fake answers the probe (zero report data) and one request.
        let (root, entry) = fake("sev_guest", &snp_report(&ReportData::ZERO), Some(b"certs"));
        let a = ConfigfsTsmAttester::open(root.path()).expect("open");
        assert_eq!(a.kind(), TeeKind::SevSnp);
        assert_eq!(a.measurement(), Measurement(vec![0xcd; 48]));
        let ev = a.attest(&ReportData::ZERO).expect("attest");
        match ev {
            Evidence::SevSnp { report, certs } => {
                assert_eq!(report.len(), 0x4A0);
                assert_eq!(certs.as_deref(), Some(&b"certs"[..]));
            }
            other => panic!("unexpected {other:?}"),
        }
        // We wrote the report data to inblob.
        assert_eq!(fs::read(entry.join("inblob")).expect("read"), vec![0u8; 64]);
        // The pre-existing entry was reused, not removed.
        assert!(entry.is_dir());
    }

    #[test]
    fn tdx_guest_round_trip_without_auxblob() {
        let rd = ReportData::ZERO;
        let quote = crate::tdx::tests::synthetic_quote(&rd);
        let (root, _entry) = fake("tdx_guest", &quote, None);
        let a = ConfigfsTsmAttester::open(root.path()).expect("open");
        assert_eq!(a.kind(), TeeKind::Tdx);
        assert_eq!(a.measurement(), Measurement(vec![0x77; 48]));
        assert_eq!(a.attest(&rd).expect("attest"), Evidence::Tdx { quote });
    }

    #[test]
    fn report_for_other_data_is_refused() {
        let (root, entry) = fake("sev_guest", &snp_report(&ReportData::ZERO), None);
        let a = ConfigfsTsmAttester::open(root.path()).expect("open");
        let mine = ReportData([0x42; 64]);
        assert!(matches!(a.attest(&mine), Err(Error::Attester(_))));
        assert_eq!(
            fs::read(entry.join("inblob")).expect("read"),
            vec![0x42; 64]
        );
    }

    #[test]
    fn privlevel_is_written() {
        let (root, entry) = fake("sev_guest", &snp_report(&ReportData::ZERO), Some(b""));
        fs::write(entry.join("privlevel"), b"").expect("privlevel");
        let a = ConfigfsTsmAttester::open_with(root.path(), DEFAULT_ENTRY, Some(2)).expect("open");
        assert_eq!(fs::read(entry.join("privlevel")).expect("read"), b"2");
        // Empty auxblob means no certificates.
        assert!(matches!(
            a.attest(&ReportData::ZERO).expect("attest"),
            Evidence::SevSnp { certs: None, .. }
        ));
    }

    #[test]
    fn missing_root_and_bad_arguments() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(matches!(
            ConfigfsTsmAttester::open(dir.path().join("nope")),
            Err(Error::AttesterIo { .. })
        ));
        for bad in ["", "a/b", "..", &"x".repeat(65)] {
            assert!(matches!(
                ConfigfsTsmAttester::open_with(dir.path(), bad, None),
                Err(Error::InvalidArgument(_))
            ));
        }
        assert!(matches!(
            ConfigfsTsmAttester::open_with(dir.path(), "ok", Some(4)),
            Err(Error::InvalidArgument(_))
        ));
    }

    #[test]
    fn fresh_entry_without_attributes_fails_and_is_cleaned_up() {
        // mkdir on a plain directory creates no attributes: the write to inblob fails cleanly
        // and the entry we created is removed again.
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(matches!(
            ConfigfsTsmAttester::open(dir.path()),
            Err(Error::AttesterIo { .. })
        ));
        assert!(!dir.path().join(DEFAULT_ENTRY).exists());
    }

    #[test]
    fn bad_attribute_contents() {
        let good = snp_report(&ReportData::ZERO);
        // Unknown provider.
        let (root, _) = fake("arm_cca_guest", &good, None);
        assert!(matches!(
            ConfigfsTsmAttester::open(root.path()),
            Err(Error::Attester(_))
        ));
        // Non-numeric generation.
        let (root, entry) = fake("sev_guest", &good, None);
        fs::write(entry.join("generation"), b"three").expect("write");
        assert!(matches!(
            ConfigfsTsmAttester::open(root.path()),
            Err(Error::Attester(_))
        ));
        // Truncated report.
        let (root, _) = fake("sev_guest", &good[..100], None);
        assert!(matches!(
            ConfigfsTsmAttester::open(root.path()),
            Err(Error::Truncated { .. })
        ));
        // Oversized outblob.
        let (root, _) = fake("sev_guest", &vec![0u8; MAX_EVIDENCE_LEN + 1], None);
        assert!(matches!(
            ConfigfsTsmAttester::open(root.path()),
            Err(Error::TooLarge { .. })
        ));
        // Missing outblob.
        let (root, entry) = fake("sev_guest", &good, None);
        fs::remove_file(entry.join("outblob")).expect("rm");
        assert!(matches!(
            ConfigfsTsmAttester::open(root.path()),
            Err(Error::AttesterIo { .. })
        ));
    }

    #[test]
    fn generation_change_during_the_read_is_refused() {
        // `outblob` as a FIFO: while the attester is blocked reading it (after its first read of
        // `generation`), a helper thread bumps `generation`, as the kernel would if another
        // process wrote `inblob` in between, and only then releases the report.
        let report = snp_report(&ReportData::ZERO);
        let (root, entry) = fake("sev_guest", &report, None);
        let out_path = entry.join("outblob");
        fs::remove_file(&out_path).expect("rm");
        let status = std::process::Command::new("mkfifo")
            .arg(&out_path)
            .status()
            .expect("run mkfifo");
        assert!(status.success());
        let writer = {
            let gen_path = entry.join("generation");
            std::thread::spawn(move || {
                // Blocks until the attester opens outblob for reading.
                let mut f = fs::OpenOptions::new()
                    .write(true)
                    .open(&out_path)
                    .expect("open fifo");
                fs::write(&gen_path, b"4\n").expect("bump generation");
                f.write_all(&report).expect("write fifo");
            })
        };
        match ConfigfsTsmAttester::open(root.path()) {
            Err(Error::Attester(msg)) => assert!(msg.contains("generation 3 -> 4"), "{msg}"),
            other => panic!("expected a generation error, got {other:?}"),
        }
        writer.join().expect("writer thread");
    }

    #[test]
    fn provider_names() {
        assert_eq!(parse_provider("sev_guest\n").expect("snp"), TeeKind::SevSnp);
        assert_eq!(parse_provider("tdx_guest").expect("tdx"), TeeKind::Tdx);
        let r = parse_provider("");
        assert!(
            matches!(&r, Err(Error::Attester(m)) if m.contains("unsupported configfs-tsm provider")),
            "{r:?}"
        );
    }
}
