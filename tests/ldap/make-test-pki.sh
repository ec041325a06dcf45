#!/usr/bin/env bash
# Writes a small test PKI into OUTDIR for the Directory Service tests (Rust and Python):
#
#   ca.pem, ca.key          "Carapace Test LDAP CA" (EC P-256, 365 days) — register it
#   server.pem, server.key  slapd's certificate, signed by ca.pem, for dc1.corp.example.com
#                           with IP SANs 127.0.0.1 and 127.0.0.2 (30 days)
#   other-ca.pem            an unrelated CA: trusting only it must fail the LDAPS check
#   smart-ca.pem            a CA for ClientCertAuth (smart-card) registrations
#   soon-ca.pem             a CA that expires in 30 days (refused: under 90 days left)
#   ca-1.pem .. ca-6.pem    distinct CAs, to reach the 5-per-directory ClientLDAPS limit
#
# Usage: make-test-pki.sh OUTDIR
set -euo pipefail
out=$1
mkdir -p "$out"
cd "$out"

ca() { # ca NAME CN DAYS
  openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$1.key" -out "$1.pem" -days "$3" -subj "/CN=$2" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
}

ca ca "Carapace Test LDAP CA" 365
ca other-ca "Unrelated Test CA" 365
ca smart-ca "Carapace Test Smart Card CA" 365
ca soon-ca "Short-lived Test CA" 30
for i in 1 2 3 4 5 6; do ca "ca-$i" "Limit Test CA $i" 365; done

openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -keyout server.key -out server.csr -subj "/CN=dc1.corp.example.com" 2>/dev/null
printf '%s\n' \
  "subjectAltName=DNS:dc1.corp.example.com,IP:127.0.0.1,IP:127.0.0.2" \
  "basicConstraints=critical,CA:FALSE" \
  "keyUsage=critical,digitalSignature" \
  "extendedKeyUsage=serverAuth" > server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
  -out server.pem -days 30 -sha256 -extfile server.ext 2>/dev/null
chmod 600 ./*.key
