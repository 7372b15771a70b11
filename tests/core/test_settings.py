"""Settings: environment, qorgau.toml, and nothing secret in their printout."""

from __future__ import annotations

from pathlib import Path

import pytest

from qorgau.core.settings import Settings, SettingsError, get_settings


def test_a_plain_postgresql_url_uses_psycopg() -> None:
    s = Settings(database_url="postgresql://qorgau@db/qorgau")
    assert s.resolved_database_url == "postgresql+psycopg://qorgau@db/qorgau"


def test_the_default_database_lives_in_the_data_dir(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path / "one")
    assert s.resolved_database_url.endswith(str(tmp_path / "one" / "qorgau.db"))
    assert s.master_key_path == tmp_path / "one" / "master.key"


def test_repr_hides_the_database_password() -> None:
    s = Settings(database_url="postgresql://qorgau:s3cret-pass@db/qorgau")
    assert "s3cret-pass" not in repr(s) and "qorgau@db" not in repr(s).replace("***@", "")


def test_environment_wins_over_the_toml_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "qorgau.toml"
    config.write_text('port = 9000\ndefault_language = "ru"\n')
    monkeypatch.setenv("QORGAU_CONFIG", str(config))
    monkeypatch.setenv("QORGAU_PORT", "9100")
    get_settings.cache_clear()
    try:
        s = get_settings()
        assert (s.port, s.default_language) == (9100, "ru")
    finally:
        get_settings.cache_clear()


def test_an_unknown_setting_in_the_file_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "qorgau.toml"
    config.write_text('prot = 9000\n')
    monkeypatch.setenv("QORGAU_CONFIG", str(config))
    get_settings.cache_clear()
    try:
        with pytest.raises(SettingsError, match="prot"):
            get_settings()
    finally:
        get_settings.cache_clear()
