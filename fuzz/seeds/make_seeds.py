#!/usr/bin/env python3
"""Writes the checked-in seed corpora (fuzz/seeds/<target>/) from the repository's test data:
the RFC vectors of crates/proto/tests/data and the real evidence and collateral samples of
crates/attest/tests/data/real, plus a few hand-written bodies. Run from anywhere; idempotent."""
import base64, json, os, re, shutil

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
PROTO = os.path.join(ROOT, "crates/proto/tests/data")
REAL = os.path.join(ROOT, "crates/attest/tests/data/real")
ATTEST = os.path.join(ROOT, "crates/attest/tests/data")


def text(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def raw(path):
    with open(path, "rb") as f:
        return f.read()


def unhex(s):
    return bytes.fromhex("".join(re.findall(r"[0-9a-fA-F]", s)))


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def rfc9458():
    """The hex blocks of RFC 9458 Appendix A, in order."""
    blocks, cur = [], []
    for line in text(os.path.join(PROTO, "rfc9458-appendix-a.txt")).splitlines():
        s = line.strip()
        if s and re.fullmatch(r"[0-9a-f]+", s):
            cur.append(s)
        elif cur:
            blocks.append(bytes.fromhex("".join(cur)))
            cur = []
    if cur:
        blocks.append(bytes.fromhex("".join(cur)))
    return blocks


def rfc9292():
    """The figures of RFC 9292 Section 5 (hex dump columns, ASCII column dropped)."""
    figs, cur = [], None
    for line in text(os.path.join(PROTO, "rfc9292-examples.txt")).splitlines():
        if line.startswith("# Figure"):
            if cur:
                figs.append(cur)
            cur = b""
        elif cur is not None and line.strip():
            cur += unhex(" ".join(line[:36].split()))
    if cur:
        figs.append(cur)
    return figs


def main():
    seeds = {}

    def add(target, name, data):
        seeds.setdefault(target, []).append((name, data if isinstance(data, bytes) else data.encode()))

    a = rfc9458()
    key_config, bhttp_req, enc_req = a[1], a[2], a[6]
    bhttp_res, enc_res = a[7], a[13]
    add("key_config", "rfc9458-key-config", key_config)
    add("key_config_list", "rfc9458-key-config-list", len(key_config).to_bytes(2, "big") + key_config)
    for i, fig in enumerate(rfc9292()):
        add("bhttp", f"rfc9292-figure-{i}", fig)
        add("encapsulated_request" if i < 2 else "encapsulated_response", f"rfc9292-figure-{i}", fig)
    add("bhttp", "rfc9458-request", bhttp_req)
    add("encapsulated_request", "rfc9458-encapsulated-request", enc_req)
    add("encapsulated_request", "rfc9458-request-plaintext", bhttp_req)
    add("encapsulated_response", "rfc9458-response-plaintext", bhttp_res)
    add("encapsulated_response", "rfc9458-encapsulated-response", enc_res)

    for rel in ["snp/milan_gcp_report.hex", "snp/milan_virtee_report_v2.hex", "snp/genoa_azure_report.hex",
                "snp/milan_azure_report.hex", "tdx/tdx_quote_v4.hex", "sgx/sgx_quote_v3.hex"]:
        add("hardware_reports", os.path.basename(rel)[:-4], unhex(text(os.path.join(REAL, rel))))
    add("hardware_reports", "evervault_attestation_doc",
        base64.b64decode("".join(text(os.path.join(REAL, "nitro/evervault_attestation_doc.b64")).split())))

    # The `evidence` target (and the KDS release body) start from real evidence in clave's envelope
    # (crates/attest/src/evidence.rs): SEV-SNP with and without the host certificate table (VCEK,
    # ASK, ARK), so the fuzzer reaches the chain and report checks, and TDX, SGX and Nitro.
    def pem_der(path):
        body = re.search(r"-----BEGIN [A-Z ]+-----(.*?)-----END", text(path), re.S).group(1)
        return base64.b64decode("".join(body.split()))

    def field(b):
        return len(b).to_bytes(4, "big") + b

    def cert_table(certs):
        guids = {"vcek": "8d75da6364e66445adc5f4b93be8accd", "ask": "79b3b74aacbbe44fa02f05aef327c782",
                 "ark": "a406b4c003a8524997433fb6014cd0ae"}
        head_len = 24 * (len(certs) + 1)
        head, blobs = b"", b""
        for name, der in certs:
            head += bytes.fromhex(guids[name]) + (head_len + len(blobs)).to_bytes(4, "little") + len(der).to_bytes(4, "little")
            blobs += der
        return head + bytes(24) + blobs

    def envelope(tag, body):
        return b"CLEV\x01" + bytes([tag]) + body

    evidence = {}
    for sample, product in [("milan_gcp", "milan"), ("genoa_azure", "genoa")]:
        report = unhex(text(os.path.join(REAL, f"snp/{sample}_report.hex")))
        certs = cert_table([("vcek", pem_der(os.path.join(REAL, f"snp/{sample}_vcek.pem"))),
                            ("ask", pem_der(os.path.join(REAL, f"roots/amd_{product}_ask.pem"))),
                            ("ark", pem_der(os.path.join(REAL, f"roots/amd_{product}_ark.pem")))])
        evidence[f"snp_{sample}_with_certs"] = envelope(2, field(report) + b"\x01" + field(certs))
    evidence["snp_milan_azure_no_certs"] = envelope(2, field(unhex(text(os.path.join(REAL, "snp/milan_azure_report.hex")))) + b"\x00")
    evidence["tdx_quote_v4"] = envelope(3, field(unhex(text(os.path.join(REAL, "tdx/tdx_quote_v4.hex")))))
    evidence["sgx_quote_v3"] = envelope(4, field(unhex(text(os.path.join(REAL, "sgx/sgx_quote_v3.hex")))))
    evidence["nitro_evervault"] = envelope(5, field(base64.b64decode("".join(text(os.path.join(REAL, "nitro/evervault_attestation_doc.b64")).split()))))
    for name, ev in evidence.items():
        add("evidence", name, ev)

    # The SEV-SNP CRL parser: a real X.509 v2 CRL (Intel's PCK platform CRL, the only CRL among the
    # samples; AMD's have the same structure with an RSA-PSS signature), as DER and as PEM.
    crl = unhex(text(os.path.join(REAL, "sgx/sgx_pck_platform_crl.hex")))
    add("snp_crl", "sgx_pck_platform_crl_der", crl)
    pem = base64.b64encode(crl).decode()
    add("snp_crl", "sgx_pck_platform_crl_pem",
        "-----BEGIN X509 CRL-----\n" + "\n".join(pem[i:i + 64] for i in range(0, len(pem), 64)) + "\n-----END X509 CRL-----\n")

    for rel in ["tdx/tdx_collateral.json", "sgx/sgx_collateral.json"]:
        add("dcap_collateral", os.path.basename(rel)[:-5], raw(os.path.join(REAL, rel)))
    for rel in ["sgx/sgx_tcbinfo_v3_00606a000000.json", "sgx/sgx_qeidentity_v4.json", "sgx/sgx_pck_platform_crl.hex",
                "roots/intel_sgx_root_ca.pem", "roots/amd_milan_ask.pem", "snp/milan_gcp_vcek.pem"]:
        add("collateral_format", os.path.basename(rel).replace(".", "_"), raw(os.path.join(REAL, rel)))
    add("collateral_format", "sgx_pck_platform_crl_der", unhex(text(os.path.join(REAL, "sgx/sgx_pck_platform_crl.hex"))))
    add("collateral_format", "issuer_chain_header", "-----BEGIN%20CERTIFICATE-----%0AMIIB%2B%2F%3D%0A")
    add("collateral_format", "cache_control", "public, max-age=86400, s-maxage=3600")

    for name in ["dev-policy.json", "sgx-signer-policy.json", "snp-tdx-policy.json"]:
        add("policy_json", name[:-5], raw(os.path.join(ATTEST, name)))

    manifest = json.dumps({"name": "hello", "code_hash": "ab" * 32, "entry": "index.js",
                           "limits": {"cpu_ms": 50, "heap_bytes": 16777216, "stack_bytes": 262144,
                                      "max_request_bytes": 1048576, "max_response_bytes": 1048576,
                                      "max_console_bytes": 65536}, "created": 1700000000},
                          separators=(",", ":"))
    add("manifest", "manifest", manifest)
    add("gateway_bodies", "deploy", json.dumps({"manifest": b64url(manifest.encode()),
                                                "sealed_code": b64url(enc_req), "activate": True}))
    add("gateway_bodies", "register", '{"url":"http://10.0.0.5:7001"}')
    add("gateway_bodies", "activate", '{"version":3}')
    nonce = b64url(bytes(range(32)))
    add("kds_bodies", "release", json.dumps({"spec": b64url(b"\x01spec"), "evidence": b64url(b"CLEV\x01"),
                                             "ephemeral_public_key": b64url(bytes(32)), "nonce": nonce}))
    add("kds_bodies", "release_snp", json.dumps({"spec": b64url(b"\x01spec"), "evidence": b64url(evidence["snp_milan_gcp_with_certs"]),
                                                 "ephemeral_public_key": b64url(bytes(32)), "nonce": nonce}))
    add("kds_bodies", "replica_join", json.dumps({"nonce": nonce, "evidence": b64url(b"CLEV\x01"),
                                                  "ephemeral_public_key": b64url(bytes(32)), "joiner_nonce": nonce}))
    add("kds_bodies", "caller_nonce", "00" * 32)
    add("invoke_response", "problem", '{"type":"https://clave.dev/problems/script-error","title":"Script error","status":500,"detail":"x"}')

    for i, t in enumerate([
        '{"hello":"world","n":[1,2,3],"nested":{"\u00fc":"\u2713"}}',
        '{"items":[{"k":"v\\u00e9\\n","n":-12.5e3},true,false,null,[]],"s":"a\\"b","o":{}}',
        '[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]',
        '"\\ud83d\\ude00 \\u0000 \\/"',
        '{"a":1e308,"b":-0,"c":0.1,"d":123456789012345678901234567890,"__proto__":{"x":1}}',
    ]):
        add("sandbox_json", f"json-{i}", t)

    for target, files in seeds.items():
        d = os.path.join(HERE, target)
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        for name, data in files:
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)
    print(f"wrote {sum(len(v) for v in seeds.values())} seeds for {len(seeds)} targets")


main()
