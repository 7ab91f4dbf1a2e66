"""Settings: one typed object; a bad value names the variable; production needs secrets."""

from __future__ import annotations

import subprocess

import pytest

from infrastructure.settings import SettingsError, load_settings
from tests.support.processes import blossom, child_env
from tests.support.settings import make_environ


def test_defaults_choose_embedded_database_and_simulator(tmp_path):
    settings = load_settings({"BLOSSOM_DATA_DIR": str(tmp_path)})
    assert settings.database_url is None
    assert settings.sms_provider == "simulator"
    assert settings.env == "development"


def test_development_secrets_are_generated_once_and_kept(tmp_path):
    first = load_settings({"BLOSSOM_DATA_DIR": str(tmp_path)})
    second = load_settings({"BLOSSOM_DATA_DIR": str(tmp_path)})
    assert first.encryption_keys == second.encryption_keys
    assert first.shopify_api_secret == second.shopify_api_secret
    assert (tmp_path / "dev-secrets.json").stat().st_mode & 0o077 == 0


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("LOG_LEVEL", "LOUD", "one of DEBUG"),
        ("PORT", "eighty", "an integer"),
        ("DATABASE_URL", "mysql://x", "postgresql://"),
        ("APP_URL", "not a url", "http(s) URL"),
        ("ENCRYPTION_KEYS", "k1:c2hvcnQ=", "id:base64key"),
        ("BLIND_INDEX_KEY", "c2hvcnQ=", "at least 32"),
        ("SHOPIFY_API_VERSION", "latest", "2026-07"),
        ("BLOSSOM_ENV", "staging", "production"),
    ],
)
def test_bad_value_names_the_variable_and_what_is_expected(tmp_path, variable, value, expected):
    with pytest.raises(SettingsError) as raised:
        load_settings(make_environ(tmp_path, **{variable: value}))
    assert raised.value.variable == variable
    assert expected in raised.value.expected


def test_production_refuses_to_start_without_real_secrets(tmp_path):
    with pytest.raises(SettingsError) as raised:
        load_settings({"BLOSSOM_ENV": "production", "BLOSSOM_DATA_DIR": str(tmp_path)})
    assert raised.value.variable == "ENCRYPTION_KEYS"
    assert not (tmp_path / "dev-secrets.json").exists()


def test_production_refuses_the_embedded_database(tmp_path):
    environ = make_environ(tmp_path, BLOSSOM_ENV="production", MITTO_WEBHOOK_SECRET="s")
    with pytest.raises(SettingsError) as raised:
        load_settings(environ)
    assert raised.value.variable == "DATABASE_URL"
    url = "postgresql://blossom@db:5432/blossom"
    environ["APP_URL"] = "https://sms.example.com"
    assert load_settings({**environ, "DATABASE_URL": url}).database_url == url


@pytest.mark.parametrize("app_url", [None, "http://sms.example.com"])
def test_production_needs_the_apps_public_https_url(tmp_path, app_url):
    environ = make_environ(
        tmp_path,
        BLOSSOM_ENV="production",
        MITTO_WEBHOOK_SECRET="s",
        DATABASE_URL="postgresql://blossom@db:5432/blossom",
    )
    if app_url:
        environ["APP_URL"] = app_url
    with pytest.raises(SettingsError) as raised:
        load_settings(environ)
    assert raised.value.variable == "APP_URL"
    environ["APP_URL"] = "https://sms.example.com/"
    assert load_settings(environ).app_url == "https://sms.example.com"


def test_mitto_key_switches_the_provider_to_mitto(tmp_path):
    settings = load_settings(make_environ(tmp_path, MITTO_API_KEY="k"))
    assert settings.sms_provider == "mitto"


def test_process_with_a_bad_setting_exits_non_zero_naming_the_variable(tmp_path):
    result = subprocess.run(
        blossom("shops", "list"),
        env=child_env(**make_environ(tmp_path, LOG_LEVEL="LOUD")),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "LOG_LEVEL" in result.stderr and "expected one of" in result.stderr
