//! Canonical JSON: object members sorted by key (bytewise), no insignificant whitespace,
//! serde_json's string escaping and integer formatting. Floats are never produced by clave
//! types.

use serde_json::Value;

/// Write `v` canonically.
pub(crate) fn to_vec(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    write(v, &mut out);
    out
}

fn write(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_scalar(&Value::String(k.clone()), out);
                out.push(b':');
                write(v, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(v, out);
            }
            out.push(b']');
        }
        scalar => write_scalar(scalar, out),
    }
}

fn write_scalar(v: &Value, out: &mut Vec<u8>) {
    // Serialising a scalar `Value` into a Vec cannot fail.
    if serde_json::to_writer(&mut *out, v).is_err() {
        out.extend_from_slice(b"null");
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sorted_compact() {
        let v: serde_json::Value =
            serde_json::from_str(r#"{ "b": [1, {"z":null,"a":"\u00e9"}], "a": true }"#)
                .expect("json");
        assert_eq!(
            String::from_utf8(super::to_vec(&v)).expect("utf8"),
            r#"{"a":true,"b":[1,{"a":"é","z":null}]}"#
        );
    }
}
