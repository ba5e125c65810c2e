use super::*;
use clap::Parser;

#[derive(clap::Parser, Debug)]
struct Cmd {
    #[command(flatten)]
    args: EvidenceVerifyArgs,
}

fn parse(a: &[&str]) -> Result<EvidenceVerifyArgs, clap::Error> {
    Cmd::try_parse_from(std::iter::once("verify").chain(a.iter().copied())).map(|c| c.args)
}

#[test]
fn arg_parsing() {
    let a = parse(&[
        "--tee",
        "nitro",
        "--evidence",
        "d.b64",
        "--expect-pcr",
        "0=00",
        "--expect-pcr",
        "8=ab",
        "--at",
        "2023-09-07T16:00:00Z",
    ])
    .expect("parse");
    assert_eq!(a.tee, TeeArg::Nitro);
    assert_eq!(a.expect_pcr.len(), 2);
    use clap::error::ErrorKind;
    let refused = |a: &[&str], kind: ErrorKind, names: &[&str]| {
        let e = parse(a).expect_err("refused");
        assert_eq!(e.kind(), kind, "{a:?}: {e}");
        let text = e.to_string();
        for n in names {
            assert!(text.contains(n), "{a:?}: {text}");
        }
    };
    // --tee is required.
    refused(
        &["--evidence", "x"],
        ErrorKind::MissingRequiredArgument,
        &["--tee"],
    );
    refused(
        &["--tee", "sev", "--evidence", "x"],
        ErrorKind::InvalidValue,
        &["'sev'", "--tee"],
    );
    // --collateral-cache needs --fetch-collateral.
    refused(
        &["--tee", "snp", "--evidence", "x", "--collateral-cache", "d"],
        ErrorKind::MissingRequiredArgument,
        &["--fetch-collateral"],
    );
    refused(
        &[
            "--tee",
            "tdx",
            "--evidence",
            "x",
            "--policy",
            "p",
            "--expect-measurement",
            "00",
        ],
        ErrorKind::ArgumentConflict,
        &["--policy", "--expect-measurement"],
    );
    refused(
        &[
            "--tee",
            "tdx",
            "--evidence",
            "x",
            "--collateral",
            "c",
            "--fetch-collateral",
        ],
        ErrorKind::ArgumentConflict,
        &["--collateral", "--fetch-collateral"],
    );
    let a = parse(&[
        "--tee",
        "snp",
        "--evidence",
        "r",
        "--fetch-collateral",
        "--collateral-cache",
        "d",
        "--product",
        "genoa",
    ])
    .expect("parse");
    assert_eq!(a.product, Some(ProductArg::Genoa));
}

#[test]
fn registers() {
    let (n, m) = parse_register(TeeKind::Nitro, "8=0xabcd").expect("pcr");
    assert_eq!(n, "pcr8");
    assert_eq!(m.to_hex(), "abcd");
    assert_eq!(
        parse_register(TeeKind::Tdx, "RTMR0=00").expect("rtmr").0,
        "rtmr0"
    );
    for (kind, arg, want) in [
        (TeeKind::Nitro, "32=00", "has no register \"32\""),
        (TeeKind::Nitro, "999=00", "has no register \"999\""),
        (TeeKind::Nitro, "1", "\"1\" is not N=HEX"),
        (TeeKind::Nitro, "1=zz", "the value is not hex"),
        (TeeKind::SevSnp, "0=00", "has no register \"0\""),
    ] {
        let Usage(e) = parse_register(kind, arg).expect_err(arg);
        assert!(e.contains(want), "{arg}: {e}");
    }
}

#[test]
fn input_formats() {
    let raw = vec![0x00u8, 0xff, 0x10, 0x80, 0x7f];
    assert_eq!(decode_input(b"00ff10807f\n"), raw);
    assert_eq!(decode_input(b"0x00FF1080\n7F"), raw);
    assert_eq!(decode_input(b"AP8QgH8="), raw);
    assert_eq!(decode_input(b"AP8QgH8"), raw);
    assert_eq!(decode_input(b"AP8Q\ngH8=\n"), raw);
    assert_eq!(base64_decode(b"-_8").expect("url-safe"), vec![0xfb, 0xff]);
    // Raw binary stays raw.
    assert_eq!(decode_input(&raw), raw);
    let bin = [0x43u8, 0x4c, 0x45, 0x56, 0x01, 0x05, 0x00];
    assert_eq!(decode_input(&bin), bin.to_vec());
    // Odd-length hex-looking text that is not base64 either stays as is.
    assert_eq!(decode_input(b"abc"), b"abc".to_vec());
    assert!(base64_decode(b"A===").is_none());
    assert!(base64_decode(b"AB=C").is_none());
    assert!(base64_decode(b"A").is_none());
    assert!(base64_decode(b"AP8Q gH8=").is_none());
    assert!(
        base64_decode(b"AP+Q-H8=").is_none(),
        "one alphabet, not a mix"
    );
    assert_eq!(
        base64_decode(b"AP+QgH8=").expect("standard"),
        vec![0x00, 0xff, 0x90, 0x80, 0x7f]
    );
    // PEM passes through untouched.
    let pem = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    assert_eq!(cert_input(pem), pem.to_vec());
}

#[test]
fn rfc3339() {
    assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
    assert_eq!(parse_rfc3339("2026-01-01T00:00:00Z"), Some(1_767_225_600));
    assert_eq!(parse_rfc3339("2025-09-15T00:00:00Z"), Some(1_757_894_400));
    assert_eq!(parse_rfc3339("2025-08-15T05:45:00z"), Some(1_755_236_700));
    assert_eq!(
        parse_rfc3339("2025-08-15t07:45:00.999+02:00"),
        Some(1_755_236_700)
    );
    assert_eq!(
        parse_rfc3339("2025-08-15T03:15:00-02:30"),
        Some(1_755_236_700)
    );
    assert_eq!(parse_rfc3339("2024-02-29T00:00:00Z"), Some(1_709_164_800));
    assert_eq!(parse_rfc3339("2016-12-31T23:59:60Z"), Some(1_483_228_799));
    // RFC 3339 §5.6 allows a space for the `T`.
    assert_eq!(parse_rfc3339("2026-01-01 00:00:00Z"), Some(1_767_225_600));
    for bad in [
        "",
        "2026-01-01",
        "2026-01-01T00:00:00",
        "2026-13-01T00:00:00Z",
        "2023-02-29T00:00:00Z",
        "2026-01-32T00:00:00Z",
        "2026-01-01T24:00:00Z",
        "2026-01-01T00:60:00Z",
        "2026-01-01T00:00:00.Z",
        "2026-01-01T00:00:00+0100",
        "2026-01-01T00:00:00+24:00",
        "1969-12-31T23:59:59Z",
        "2026-01-01T00:00:00Zjunk",
        "+026-01-01T00:00:00Z",
    ] {
        assert_eq!(parse_rfc3339(bad), None, "{bad}");
    }
    for t in [0, 1_767_225_600, 1_709_164_800, 4_102_444_799] {
        assert_eq!(parse_rfc3339(&format_rfc3339(t)), Some(t));
    }
    assert_eq!(format_rfc3339(1_755_236_700), "2025-08-15T05:45:00Z");
    assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00Z");
    assert_eq!(format_rfc3339(u64::MAX), u64::MAX.to_string());
}
