#!/bin/sh
# Re-verifies every sample in ../ offline with openssl + python3 `cryptography`.
# Usage: sh verify/run_all.sh   (from crates/attest/tests/data/real)
set -e
cd "$(dirname "$0")/.."
R=roots
echo "== AMD chains (openssl; RSA-PSS)"
for p in milan genoa turin; do openssl verify -CAfile $R/amd_${p}_ark.pem $R/amd_${p}_ark.pem $R/amd_${p}_ask.pem; done
openssl verify -CAfile $R/amd_milan_ark.pem -untrusted $R/amd_milan_ask.pem snp/milan_azure_vcek.pem snp/milan_gcp_vcek.pem
openssl verify -CAfile $R/amd_genoa_ark.pem -untrusted $R/amd_genoa_ask.pem snp/genoa_azure_vcek.pem
echo "== SNP report signatures"
for s in "milan_azure_report.hex milan_azure_vcek.pem" "milan_gcp_report.hex milan_gcp_vcek.pem" "genoa_azure_report.hex genoa_azure_vcek.pem"; do
  set -- $s; echo "-- $1"; python3 -W ignore verify/snp_check.py snp/$1 snp/$2 | grep -E "SIGNATURE|version"; done
echo "== TDX";  python3 verify/dcap_check.py tdx/tdx_quote_v4.hex tdx/tdx_collateral.json | grep -E "^OK|FMSPC"
echo "== SGX";  python3 verify/dcap_check.py sgx/sgx_quote_v3.hex sgx/sgx_collateral.json | grep -E "^OK|FMSPC"
echo "== Nitro"; python3 verify/nitro_check.py nitro/evervault_attestation_doc.b64 | grep -E "^OK|window"
echo "== pinned root fingerprints (sha256 of DER)"
for f in $R/*.pem; do printf '%s  ' "$f"; openssl x509 -in $f -outform DER | sha256sum | cut -d' ' -f1; done
