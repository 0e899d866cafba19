# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A throw-away certificate authority and the TLS certificates of the simulated robots.

Real robots present a certificate that chains to the Boston Dynamics root CA and names the
service authorities (``auth.spot.robot`` and friends), not the robot's address. The simulator
does the same with its own CA, which it writes to ``ca.pem`` for clients to trust.
"""

from __future__ import annotations

import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

AUTH_AUTHORITY = "auth.spot.robot"
ROBOT_AUTHORITIES = (
    "auth.spot.robot",
    "id.spot.robot",
    "api.spot.robot",
    "payload-registration.spot.robot",
)
# What a ``wrong-name`` robot's certificate names instead: valid chain, wrong identity.
WRONG_NAME_AUTHORITIES = ("wrong-name.spot-sim.invalid",)

_VALIDITY = datetime.timedelta(days=365)
_BACKDATE = datetime.timedelta(hours=1)


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


def _pem_key(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


class ServerCertificate:
    """A TLS server key and certificate chain, as PEM bytes ready for grpc."""

    def __init__(self, key_pem, cert_pem, dns_names):
        self.key_pem = key_pem
        self.cert_pem = cert_pem
        self.dns_names = tuple(dns_names)

    def __repr__(self):
        return "ServerCertificate(dns_names=%r)" % (self.dns_names,)


class CertificateAuthority:
    """A self-signed ECDSA P-256 CA that issues server certificates."""

    def __init__(self, common_name="Spot Auth Simulator Root CA"):
        self.common_name = common_name
        self._key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "spot-auth-sim"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ])
        now = _now()
        public_key = self._key.public_key()
        self._cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(now + _VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .sign(self._key, hashes.SHA256())
        )
        self.cert_pem = self._cert.public_bytes(serialization.Encoding.PEM)

    @property
    def certificate(self):
        return self._cert

    def issue_server_certificate(self, dns_names=ROBOT_AUTHORITIES):
        """A new server certificate whose subject alternative names are ``dns_names``."""
        dns_names = tuple(dns_names)
        key = ec.generate_private_key(ec.SECP256R1())
        now = _now()
        ca_ski = self._cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns_names[0])]))
            .issuer_name(self._cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(now + _VALIDITY)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in dns_names]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
            .sign(self._key, hashes.SHA256())
        )
        return ServerCertificate(_pem_key(key), cert.public_bytes(serialization.Encoding.PEM), dns_names)
