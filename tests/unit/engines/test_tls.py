"""TLS settings and the development certificates (PGKURA_TLS=self-signed)."""

from __future__ import annotations

import ipaddress

import pytest
from cryptography import x509

from pgkura.config.settings import load_settings
from pgkura.engines.docker.tls import make_certificates, prepare
from pgkura.errors import ConfigError


def tls_settings(tmp_path, **env):
    base = {"PGKURA_ENGINE": "docker", "PGKURA_ENV_FILE": "none", "PGKURA_TLS": "self-signed",
            "PGKURA_CONTAINER": "shop-db", "PGKURA_TLS_NAMES": "db.example.internal,10.0.0.5"}  # fmt: skip
    return load_settings(tmp_path, {**base, **env})


def test_certificate_names_every_host_a_client_dials_and_the_key_is_private(tmp_path):
    s = tls_settings(tmp_path)
    make_certificates(s)
    cert = x509.load_pem_x509_certificate((tmp_path / "tls" / "server.crt").read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.DNSName)) == {
        "localhost", "shop-db", "postgres", "db.example.internal"}  # fmt: skip
    assert set(san.get_values_for_type(x509.IPAddress)) == {
        ipaddress.ip_address(a) for a in ("127.0.0.1", "::1", "10.0.0.5")}  # fmt: skip
    ca = x509.load_pem_x509_certificate((tmp_path / "tls" / "ca.crt").read_bytes())
    cert.verify_directly_issued_by(ca)
    for key in ("server.key", "ca.key"):
        assert (tmp_path / "tls" / key).stat().st_mode & 0o777 == 0o600


def test_existing_certificates_are_kept_unless_forced(tmp_path):
    s = tls_settings(tmp_path)
    assert make_certificates(s)
    first = (tmp_path / "tls" / "ca.crt").read_bytes()
    assert make_certificates(s) == []
    assert (tmp_path / "tls" / "ca.crt").read_bytes() == first
    assert make_certificates(s, force=True)
    assert (tmp_path / "tls" / "ca.crt").read_bytes() != first


def test_provided_without_files_says_which_are_missing(tmp_path):
    s = tls_settings(tmp_path, PGKURA_TLS="provided")
    with pytest.raises(ConfigError, match=r"server\.crt, server\.key, ca\.crt missing"):
        prepare(s, lambda _: None)
    with pytest.raises(ConfigError, match="does not make certificates"):
        make_certificates(s)


def test_clients_verify_the_server_over_tcp_only(tmp_path):
    dev = tls_settings(tmp_path).target
    assert dev.params["sslmode"] == "verify-full"
    assert dev.params["sslrootcert"] == str(tmp_path.resolve() / "tls" / "ca.crt")
    assert "sslmode" not in tls_settings(tmp_path, PGKURA_ENV="production").target.params
    assert "sslmode" not in tls_settings(tmp_path, PGKURA_TLS="off").target.params


@pytest.mark.parametrize(("name", "value"), [("PGKURA_TLS", "on"), ("PGKURA_TLS_NAMES", "a b")])
def test_bad_tls_settings_name_the_variable(tmp_path, name, value):
    with pytest.raises(ConfigError, match=name):
        tls_settings(tmp_path, **{name: value})


def test_tls_with_the_embedded_engine_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"PGKURA_TLS=self-signed .* Docker"):
        tls_settings(tmp_path, PGKURA_ENGINE="embedded")
