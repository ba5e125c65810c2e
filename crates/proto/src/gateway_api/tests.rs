use super::*;

fn job() -> EngineJob {
    EngineJob {
        project: "default".into(),
        function: "hello".into(),
        version: 7,
        manifest: bytes::Bytes::from_static(b"{\"name\":\"hello\"}"),
        sealed_code: vec![1, 2, 3, 4].into(),
        request: vec![9; 10].into(),
        flags: JobFlags::NONE,
        secrets: bytes::Bytes::new(),
    }
}

#[test]
fn engine_job_v3_carries_secrets() {
    let mut j = job();
    j.secrets = vec![0, 0].into();
    let v3 = j.encode().expect("encode");
    assert_eq!(&v3[..6], b"CLVJ\x03\x00");
    assert_eq!(EngineJob::decode(&v3).expect("decode v3"), j);
    for n in 0..v3.len() {
        assert_eq!(
            EngineJob::decode(&v3[..n]),
            Err(WireError::Truncated),
            "{n}"
        );
    }
    // An empty secrets blob is spelled as version 1 or 2, never 3.
    let mut empty = v3[..v3.len() - 6].to_vec();
    empty.extend_from_slice(&0u32.to_be_bytes());
    assert_eq!(EngineJob::decode(&empty), Err(WireError::BadMagic));
}

#[test]
fn engine_job_round_trip() {
    let j = job();
    let bytes = j.encode().expect("encode");
    assert_eq!(EngineJob::decode(&bytes).expect("decode"), j);
    let frame = bytes::Bytes::from(bytes);
    let shared = EngineJob::decode_shared(&frame).expect("decode shared");
    assert_eq!(shared, j);
    // The blobs point into the frame: no copy.
    let inside = |b: &bytes::Bytes| {
        let (start, end) = (
            frame.as_ptr() as usize,
            frame.as_ptr() as usize + frame.len(),
        );
        (start..end).contains(&(b.as_ptr() as usize))
    };
    assert!(inside(&shared.request) && inside(&shared.sealed_code) && inside(&shared.manifest));
}

#[test]
fn engine_job_shared_decode_refuses_what_decode_refuses() {
    let bytes = job().encode().expect("encode");
    for n in 0..bytes.len() {
        let cut = bytes::Bytes::copy_from_slice(&bytes[..n]);
        assert_eq!(
            EngineJob::decode_shared(&cut),
            EngineJob::decode(&bytes[..n]),
            "{n}"
        );
        assert_eq!(
            EngineJob::decode_shared(&cut),
            Err(WireError::Truncated),
            "{n}"
        );
    }
    let mut long = bytes.clone();
    long.push(0);
    assert_eq!(
        EngineJob::decode_shared(&bytes::Bytes::from(long)),
        Err(WireError::TrailingBytes)
    );
}

#[test]
fn engine_job_truncated_at_every_length() {
    let bytes = job().encode().expect("encode");
    for n in 0..bytes.len() {
        let err = EngineJob::decode(&bytes[..n]).expect_err("truncated must fail");
        assert!(
            matches!(err, WireError::Truncated | WireError::BadMagic),
            "{n}: {err:?}"
        );
    }
}

#[test]
fn engine_job_rejects_trailing_magic_and_utf8() {
    let mut bytes = job().encode().expect("encode");
    bytes.push(0);
    assert_eq!(EngineJob::decode(&bytes), Err(WireError::TrailingBytes));
    let mut bytes = job().encode().expect("encode");
    bytes[4] = 9;
    assert_eq!(EngineJob::decode(&bytes), Err(WireError::BadMagic));
    let mut bytes = job().encode().expect("encode");
    bytes[7] = 0xff; // first byte of the project name
    assert_eq!(
        EngineJob::decode(&bytes),
        Err(WireError::BadUtf8 { field: "project" })
    );
}

#[test]
fn engine_job_v1_framing_is_unchanged_and_v2_carries_flags() {
    let v1 = job().encode().expect("encode");
    assert_eq!(&v1[..5], b"CLVJ\x01");
    assert_eq!(&v1[5..7], &7u16.to_be_bytes());
    let mut j = job();
    j.flags = JobFlags::ASYNC;
    let v2 = j.encode().expect("encode");
    assert_eq!(&v2[..6], b"CLVJ\x02\x01");
    assert_eq!(&v2[6..], &v1[5..]);
    let back = EngineJob::decode(&v2).expect("decode v2");
    assert!(back.flags.is_async());
    assert_eq!(back, j);
    // v2 with no flag set decodes too.
    let mut zero = v2.clone();
    zero[5] = 0;
    assert_eq!(
        EngineJob::decode(&zero).expect("v2 zero").flags,
        JobFlags::NONE
    );
    // Unknown flag bits are refused.
    let mut unknown = v2.clone();
    unknown[5] = 0x82;
    assert_eq!(
        EngineJob::decode(&unknown),
        Err(WireError::UnknownFlags(0x82))
    );
    for n in 0..v2.len() {
        assert_eq!(
            EngineJob::decode(&v2[..n]),
            Err(WireError::Truncated),
            "{n}"
        );
    }
    let mut bad_version = v2;
    bad_version[4] = 4;
    assert_eq!(EngineJob::decode(&bad_version), Err(WireError::BadMagic));
    assert_eq!(JobFlags::from_bits(1), Some(JobFlags::ASYNC));
    assert_eq!(JobFlags::from_bits(2), None);
    assert!((JobFlags::NONE | JobFlags::ASYNC).is_async());
}

#[test]
fn result_ids_and_registration_json() {
    assert!(is_valid_result_id(&"0a".repeat(16)));
    for bad in [
        "",
        "0A0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a",
        &"a".repeat(31),
        &"a".repeat(33),
        "../../../../../../../../etc/pas",
    ] {
        assert!(!is_valid_result_id(bad), "{bad}");
    }
    let r: EngineRegisterRequest = serde_json::from_str(r#"{"url":"http://e:1"}"#).expect("parse");
    assert_eq!(r.url, "http://e:1");
    let err = serde_json::from_str::<EngineRegisterRequest>(r#"{"url":"x","y":1}"#)
        .expect_err("unknown field");
    assert!(err.to_string().contains("unknown field `y`"), "{err}");
    let err = serde_json::from_str::<EngineRegisterRequest>(r#"{}"#).expect_err("no url");
    assert!(err.to_string().contains("missing field `url`"), "{err}");
}

#[test]
fn engine_job_debug_hides_bytes() {
    let s = format!("{:?}", job());
    assert!(s.contains("request_len"));
    assert!(!s.contains("[9, 9"));
}

#[test]
fn deploy_request_round_trip_and_bad_base64() {
    let r = DeployRequest::new(b"{}", &[0xff, 0xfe]);
    let json = serde_json::to_string(&r).expect("json");
    let back: DeployRequest = serde_json::from_str(&json).expect("parse");
    assert_eq!(
        back.decode().expect("decode"),
        (b"{}".to_vec(), vec![0xff, 0xfe])
    );
    let bad = DeployRequest {
        manifest: "e30".into(),
        sealed_code: "!!".into(),
        activate: None,
    };
    assert_eq!(
        bad.decode(),
        Err(WireError::BadBase64 {
            field: "sealed_code"
        })
    );
    let err = serde_json::from_str::<DeployRequest>(r#"{"manifest":"","sealed_code":"","x":1}"#)
        .expect_err("unknown field");
    assert!(err.to_string().contains("unknown field `x`"), "{err}");
}

#[test]
fn padded_base64_accepted_and_bound_holds() {
    assert_eq!(b64url_decode("e30=", "m").expect("padded"), b"{}");
    for n in 0..50usize {
        let e = b64url_encode(&vec![7u8; n]);
        assert!(b64url_decoded_len_upper_bound(e.len()) >= n);
    }
}

#[test]
fn problem_serialises_type_field() {
    let p = Problem {
        type_: problem_type::NOT_FOUND.into(),
        title: "Not Found".into(),
        status: 404,
        detail: None,
    };
    let v: serde_json::Value = serde_json::to_value(&p).expect("json");
    assert_eq!(v["type"], problem_type::NOT_FOUND);
    assert!(v.get("detail").is_none());
}
