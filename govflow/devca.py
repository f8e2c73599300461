"""``python -m govflow.devca [DIR]`` (``./govflow.sh dev-ca [DIR]``): a development CA and
the certificates of every part of the scale-out stack (docker-compose.yml), for TLS on
every endpoint and mTLS to Temporal's frontend. Never for production: there the keys come
from the organisation's CA and secret store (docs/operations.md, "TLS").

DIR (default ``.data/tls``) gets ``ca.pem`` and ``ca-key.pem`` (kept, so running the
command again renews the parts' certificates under the same CA) and one folder per part,
each mounted read-only into that part's container only::

    <part>/ca.pem                        the CA, to verify the peers it calls
    <part>/server.pem, server-key.pem    the part's server certificate (serverAuth)
    <part>/client.pem, client-key.pem    a client certificate (clientAuth), only for the
                                         Temporal frontend's clients: matters, the worker,
                                         the Temporal UI and the admin-tools one-shot

Server certificates name the part's compose service, ``localhost`` and ``127.0.0.1`` (the
containers' own health checks). Only the client certificates, and Temporal's own
certificate (its nodes call each other with it), carry the clientAuth usage, so the
frontend (``requireClientAuth``) admits those holders and refuses another part's
certificate presented as a client one.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import ipaddress
import os
import pathlib
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEFAULT_DIR = pathlib.Path(".data/tls")
CA_NAME = "Govflow development CA"
LEAF_DAYS = 397
CA_DAYS = 3650


@dataclasses.dataclass(frozen=True)
class Part:
    """One container's certificates: a server one for its DNS names, a client one or not."""

    name: str
    server: bool = True
    client: bool = False
    # Temporal's nodes present their server certificate when they call each other.
    server_is_client: bool = False


# Every part of docker-compose.yml that holds certificates; the folder is the service name.
PARTS = (
    Part("identity"),
    Part("certificates"),
    Part("matters", client=True),
    Part("worker", client=True),
    Part("gateway"),
    Part("envoy"),
    Part("temporal", server_is_client=True),
    Part("temporal-ui", server=False, client=True),
    Part("temporal-setup", server=False, client=True),
    Part("demo-seed", server=False),
)
# The parts that may call Temporal's frontend (a client certificate): of Govflow's own
# processes only matters and the worker.
TEMPORAL_CLIENTS = frozenset(p.name for p in PARTS if p.client)


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Govflow development"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_ca(common_name: str = CA_NAME) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A self-signed CA that may sign leaf certificates only (path length 0)."""
    key = _key()
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name)).issuer_name(_name(common_name))
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def issue(ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, common_name: str, *,
          dns: tuple[str, ...] = (), ips: tuple[str, ...] = (), server: bool = True,
          client: bool = False) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A leaf certificate signed by ``ca`` with the given names and usages."""
    key = _key()
    now = dt.datetime.now(dt.UTC)
    usages = ([ExtendedKeyUsageOID.SERVER_AUTH] if server else []) + (
        [ExtendedKeyUsageOID.CLIENT_AUTH] if client else [])
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name)).issuer_name(ca.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=LEAF_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=False,
                                     content_commitment=False, data_encipherment=False,
                                     key_agreement=False, key_cert_sign=False, crl_sign=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
    )
    names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    names += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


def _write(path: pathlib.Path, data: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.chmod(tmp, mode)
    tmp.replace(path)


def _load_or_make_ca(root: pathlib.Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert_file, key_file = root / "ca.pem", root / "ca-key.pem"
    if cert_file.exists() and key_file.exists():
        cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
        key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise SystemExit(f"{key_file} is not an EC key of this tool")
        return cert, key
    cert, key = make_ca()
    # The CA's key never leaves DIR and is mounted nowhere: owner-only.
    _write(key_file, _pem_key(key), 0o600)
    _write(cert_file, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return cert, key


def create(root: pathlib.Path = DEFAULT_DIR, parts: tuple[Part, ...] = PARTS) -> list[pathlib.Path]:
    """Creates (or renews) the CA under ``root`` and every part's certificates; returns
    the files written."""
    root.mkdir(parents=True, exist_ok=True)
    ca, ca_key = _load_or_make_ca(root)
    ca_pem = ca.public_bytes(serialization.Encoding.PEM)
    written: list[pathlib.Path] = []
    for part in parts:
        folder = root / part.name
        _write(folder / "ca.pem", ca_pem, 0o644)
        written.append(folder / "ca.pem")
        pairs: list[tuple[str, x509.Certificate, ec.EllipticCurvePrivateKey]] = []
        if part.server:
            pairs.append(("server", *issue(ca, ca_key, part.name,
                                           dns=(part.name, "localhost"), ips=("127.0.0.1",),
                                           client=part.server_is_client)))
        if part.client:
            pairs.append(("client", *issue(ca, ca_key, f"{part.name} (Temporal client)",
                                           server=False, client=True)))
        for stem, cert, key in pairs:
            # Readable by the container's own user (the images run as 65534 or as
            # Temporal's user, not as the developer who ran this): a development CA
            # only. Each folder is mounted into its one part only.
            _write(folder / f"{stem}.pem", cert.public_bytes(serialization.Encoding.PEM), 0o644)
            _write(folder / f"{stem}-key.pem", _pem_key(key), 0o644)
            written += [folder / f"{stem}.pem", folder / f"{stem}-key.pem"]
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="govflow dev-ca",
        description="Create a development CA and the TLS certificates of the scale-out "
                    "stack (docker-compose.yml reads them from GOVFLOW_TLS_DIR, default "
                    ".data/tls). Development only.")
    parser.add_argument("dir", nargs="?", type=pathlib.Path, default=DEFAULT_DIR,
                        help="where to write them (default: .data/tls)")
    args = parser.parse_args(argv)
    root: pathlib.Path = args.dir
    kept = (root / "ca.pem").exists()
    written = create(root)
    print(f"{'kept the CA in' if kept else 'created a CA in'} {root}/ca.pem; "
          f"{len(written)} files for {len(PARTS)} parts under {root}/")
    if root.resolve() != DEFAULT_DIR.resolve():
        print(f"export GOVFLOW_TLS_DIR={root.resolve()}   # for docker compose", file=sys.stderr)


if __name__ == "__main__":
    main()
