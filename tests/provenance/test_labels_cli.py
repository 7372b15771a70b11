"""``qorgau label``, ``qorgau verify`` and ``qorgau labels …`` against the test platform's data dir and database
(Typer's CliRunner; real Pillow, c2pa-python and the local test CA; issue 9; L-AI-LABEL).

A folder of mixed files is labeled as a batch: what can be labeled is written as ``<stem>.ai<ext>``, what can't is
named with its field and the exit code is 1; originals are untouched unless ``--in-place``; outputs are never
overwritten without ``--force``. ``verify`` exits 0 only when every file is trusted, and writes JSON and HTML
folder audits."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from qorgau.cli.main import app
from qorgau.core.platform import Platform
from qorgau.core.settings import get_settings
from qorgau.provenance.service import labels_for
from tests.conftest import Tenant
from tests.provenance import media_fixtures as media
from tests.provenance.conftest import GenAiSystem
from tests.provenance.conftest import two_level_chain
from tests.provenance.test_labels_api import pixel_offset

runner = CliRunner()


class Cli:
    """``qorgau`` run in-process against the test's platform (same data dir, same database)."""

    def __init__(self, platform: Platform) -> None:
        self.env = {"QORGAU_DATA_DIR": str(platform.settings.data_dir),
                    "QORGAU_DATABASE_URL": platform.settings.database_url,
                    "QORGAU_CONFIG": "/nonexistent.toml", "COLUMNS": "250", "NO_COLOR": "1"}

    def __call__(self, *args: str, code: int | None = 0, input: str | None = None) -> tuple[int, str, str]:
        get_settings.cache_clear()
        result = runner.invoke(app, [str(a) for a in args], env=self.env, input=input)  # type: ignore[arg-type]
        if result.exception and not isinstance(result.exception, SystemExit):
            raise result.exception
        if code is not None:
            assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
        return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def cli(platform: Platform) -> Iterator[Cli]:
    yield Cli(platform)
    get_settings.cache_clear()


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def mixed(tmp_path: Path) -> Path:
    """A folder as an operator has it: pictures, a text, a subfolder, and a file qorgau can't label."""
    folder = tmp_path / "publish"
    (folder / "sub").mkdir(parents=True)
    (folder / "hero.png").write_bytes(media.png(120, 90))
    (folder / "thumb.jpg").write_bytes(media.jpeg(80, 60))
    (folder / "caption.txt").write_text("Жаңа коллекция. Новая коллекция. New collection.\n", encoding="utf-8")
    (folder / "blob.bin").write_bytes(b"\x00\x01\x02 opaque data \xfe\xff" * 16)
    (folder / "sub" / "detail.png").write_bytes(media.png(64, 48))
    (folder / ".hidden.png").write_bytes(media.png(16, 12))
    return folder


def records(platform: Platform, tenant: Tenant) -> list:
    with platform.db.reader(tenant.org_id) as s:
        return labels_for(platform).records(s)


# --- qorgau label ----------------------------------------------------------------------------------------------


def test_a_mixed_folder_is_labeled_and_the_unsupported_file_is_named(
        cli: Cli, platform: Platform, generator: GenAiSystem, mixed: Path) -> None:
    before = {p: sha(p) for p in mixed.rglob("*") if p.is_file()}
    code, out, err = cli("label", mixed, "--system", generator.code, "--recursive", code=1)
    for name in ("hero.ai.png", "thumb.ai.jpg", "caption.ai.txt", "sub/detail.ai.png"):
        assert (mixed / name).is_file(), name
    assert not (mixed / ".hidden.ai.png").exists() and not list(mixed.glob("blob.ai*"))
    assert "blob.bin" in err and "[file]" in err and "1 of 5" in err
    assert "4 labeled" in out and "LOCAL TEST CA" in out
    assert {p: sha(p) for p in before} == before  # originals untouched
    assert len(records(platform, generator.tenant)) == 4
    assert not list(mixed.rglob(".qorgau-*"))  # no temporary files left behind

    report = labels_for(platform).verify((mixed / "hero.ai.png").read_bytes())
    assert report.state == "trusted" and report.register_id == generator.register_id
    text = labels_for(platform).verify((mixed / "caption.ai.txt").read_bytes(), filename="caption.ai.txt")
    assert text.state == "trusted" and text.warning_present is True


def test_without_recursive_only_the_folders_own_files_and_json_names_failures(
        cli: Cli, generator: GenAiSystem, mixed: Path) -> None:
    code, out, _ = cli("label", mixed, "--system", generator.register_id, "--json", "--no-tile",
                       "--position", "top", "--lang", "ru,en", "--composite", code=1)
    doc = json.loads(out)
    assert sorted(d["file"] for d in doc["labeled"]) == ["caption.txt", "hero.png", "thumb.jpg"]
    assert doc["failed"] == [{"file": "blob.bin", "field": "file", "error": doc["failed"][0]["error"]}]
    assert "unsupported" in doc["failed"][0]["error"]
    assert not (mixed / "sub" / "detail.ai.png").exists()
    hero = next(d for d in doc["labeled"] if d["file"] == "hero.png")
    assert hero["warning"] == "band" and hero["register_id"] == generator.register_id


def test_out_mirrors_folders_and_existing_outputs_need_force(
        cli: Cli, platform: Platform, generator: GenAiSystem, mixed: Path, tmp_path: Path) -> None:
    (mixed / "blob.bin").unlink()
    target = tmp_path / "labeled"
    cli("label", mixed, "--system", generator.code, "-r", "--out", target)
    assert sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file()) == [
        "caption.ai.txt", "hero.ai.png", "sub/detail.ai.png", "thumb.ai.jpg"]
    assert not list(mixed.rglob("*.ai.*"))  # nothing written next to the originals
    first = sha(target / "hero.ai.png")
    issued = len(records(platform, generator.tenant))

    code, _, err = cli("label", mixed / "hero.png", "--system", generator.code, "--out", target, code=1)
    assert "[--force]" in err and "exists" in err
    assert sha(target / "hero.ai.png") == first
    assert len(records(platform, generator.tenant)) == issued  # the refused label was rolled back

    cli("label", mixed / "hero.png", "--system", generator.code, "--out", target, "--force")
    assert sha(target / "hero.ai.png") != first
    assert len(records(platform, generator.tenant)) == issued + 1


def test_in_place_replaces_the_original_only_when_asked(cli: Cli, platform: Platform, generator: GenAiSystem,
                                                         tmp_path: Path) -> None:
    picture = tmp_path / "poster.png"
    picture.write_bytes(media.png(100, 80))
    original = sha(picture)
    cli("label", picture, "--system", generator.code)
    assert sha(picture) == original and (tmp_path / "poster.ai.png").is_file()
    assert labels_for(platform).verify(picture.read_bytes()).state == "unlabeled"

    picture.chmod(0o640)
    cli("label", picture, "--system", generator.code, "--in-place")
    assert sha(picture) != original and picture.stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "poster.ai.png").stat().st_mode & 0o077  # a new output is readable like any new file
    assert labels_for(platform).verify(picture.read_bytes()).state == "trusted"
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["poster.ai.png", "poster.png"]
    _, _, err = cli("label", picture, "--system", generator.code, "--in-place", "--out", tmp_path / "x", code=2)
    assert "--in-place" in err


def test_bad_options_exit_2_naming_the_option(cli: Cli, generator: GenAiSystem, mixed: Path,
                                              tenant_b: Tenant) -> None:
    _, _, err = cli("label", mixed / "hero.png", "--system", generator.code, "--position", "left", code=2)
    assert "[position]" in err
    _, _, err = cli("label", mixed / "hero.png", "--system", generator.code, code=2)  # two organizations now
    assert "[--org]" in err
    code, _, err = cli("label", mixed / "hero.png", "--system", generator.code, "--org", tenant_b.bin, code=1)
    assert "[system]" in err  # another operator's system is not found
    cli("label", mixed / "hero.png", "--system", generator.code, "--org", generator.tenant.bin)
    _, _, err = cli("label", mixed / "nothing-here.png", "--system", generator.code, code=2)
    assert "no such file" in err


# --- qorgau verify ---------------------------------------------------------------------------------------------


@pytest.fixture
def audited(cli: Cli, generator: GenAiSystem, tmp_path: Path) -> Path:
    """A folder to audit: a trusted label, a tampered copy, a stripped copy, an unlabeled picture, junk."""
    folder = tmp_path / "site"
    (folder / "img").mkdir(parents=True)
    source = tmp_path / "src.png"
    source.write_bytes(media.png(120, 90))
    cli("label", source, "--system", generator.code, "--out", folder / "img")
    labeled = (folder / "img" / "src.ai.png").read_bytes()
    tampered = bytearray(labeled)
    tampered[pixel_offset(labeled)] ^= 0x01
    (folder / "img" / "tampered.png").write_bytes(bytes(tampered))
    stripped = io.BytesIO()
    Image.open(io.BytesIO(labeled)).save(stripped, "PNG")
    (folder / "stripped.png").write_bytes(stripped.getvalue())
    (folder / "plain.jpg").write_bytes(media.jpeg())
    (folder / "notes.bin").write_bytes(b"\x00\x01\x02\xff" * 10)
    return folder


def test_verify_reports_every_state_and_exits_1(cli: Cli, generator: GenAiSystem, audited: Path) -> None:
    _, out, _ = cli("verify", audited, code=1)
    lines = {path: next(line for line in out.splitlines() if f" {path} " in line)
             for path in ("img/src.ai.png", "img/tampered.png", "stripped.png", "plain.jpg", "notes.bin")}
    assert "trusted" in lines["img/src.ai.png"] and generator.register_id in lines["img/src.ai.png"]
    assert "present" in lines["img/src.ai.png"] and generator.tenant.bin in lines["img/src.ai.png"]
    assert "invalid" in lines["img/tampered.png"] and "c2pa.hash.data" in lines["img/tampered.png"]
    assert "unlabeled" in lines["stripped.png"] and "unlabeled" in lines["plain.jpg"]
    assert "error" in lines["notes.bin"]
    cli("verify", audited / "img" / "src.ai.png")  # one trusted file: exit 0


def test_verify_json_report_parses(cli: Cli, generator: GenAiSystem, audited: Path, tmp_path: Path) -> None:
    _, out, _ = cli("verify", audited, "--report", "json", code=1)
    doc = json.loads(out)
    states = {f["path"]: f["state"] for f in doc["files"]}
    assert states == {"img/src.ai.png": "trusted", "img/tampered.png": "invalid", "notes.bin": "error",
                      "plain.jpg": "unlabeled", "stripped.png": "unlabeled"}
    assert doc["counts"] == {"trusted": 1, "untrusted": 0, "invalid": 1, "unlabeled": 2, "error": 1}
    tampered = next(f for f in doc["files"] if f["path"] == "img/tampered.png")
    assert tampered["failure"].startswith("c2pa.hash.data") and tampered["register_id"] == generator.register_id
    written = tmp_path / "audit.json"
    cli("verify", audited, "--report", "json", "--out", written, code=1)
    assert json.loads(written.read_text(encoding="utf-8"))["counts"] == doc["counts"]


def test_verify_html_report_is_a_self_contained_folder_audit(cli: Cli, generator: GenAiSystem, audited: Path,
                                                             tmp_path: Path) -> None:
    page = tmp_path / "audit.html"
    _, out, _ = cli("verify", audited, "--report", "html", "--out", page, "--lang", "kk", code=1)
    assert "wrote" in out
    html = page.read_text(encoding="utf-8")
    assert "ЖИ мазмұнының таңбалануын тексеру" in html and '<html lang="kk">' in html
    for path, state in (("img/src.ai.png", "trusted"), ("img/tampered.png", "invalid"), ("stripped.png", "unlabeled"),
                        ("plain.jpg", "unlabeled"), ("notes.bin", "error")):
        row = html.split(f'<td class="path">{path}</td>')[0].rsplit("<tr", 1)[1]
        assert f'data-state="{state}"' in row, path
    assert generator.register_id in html and generator.tenant.bin in html and "c2pa.hash.data" in html
    assert "http://" not in html and "https://" not in html and "<script" not in html
    _, _, err = cli("verify", audited, "--report", "html", "--lang", "de", "--out", page, code=2)
    assert "[lang]" in err


def test_verify_trust_adds_an_anchor_for_the_run(cli: Cli, platform: Platform, generator: GenAiSystem,
                                                 tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    root, chain, key = two_level_chain(password=b"s3cret")
    (tmp_path / "chain.pem").write_bytes(chain)
    (tmp_path / "key.pem").write_bytes(key)
    (tmp_path / "root.pem").write_bytes(root.public_bytes(serialization.Encoding.PEM))
    _, _, err = cli("labels", "import-signer", "--chain", tmp_path / "chain.pem", "--key", tmp_path / "key.pem",
                    code=2)
    assert "[password]" in err
    _, out, _ = cli("labels", "import-signer", "--chain", tmp_path / "chain.pem", "--key", tmp_path / "key.pem",
                    "--password-stdin", "--json", input="s3cret\n")
    assert json.loads(out)["local_test_ca"] is False
    picture = tmp_path / "art.png"
    picture.write_bytes(media.png(90, 60))
    cli("label", picture, "--system", generator.code)
    labeled = tmp_path / "art.ai.png"

    _, out, _ = cli("verify", labeled, "--report", "json", code=1)
    assert json.loads(out)["files"][0]["state"] == "untrusted"
    _, out, _ = cli("verify", labeled, "--report", "json", "--trust", tmp_path / "root.pem")
    assert json.loads(out)["files"][0]["state"] == "trusted"
    assert labels_for(platform).verify(labeled.read_bytes()).state == "untrusted"  # only for that run
    _, _, err = cli("verify", labeled, "--trust", tmp_path / "key.pem", code=2)
    assert "[--trust]" in err


# --- qorgau labels ---------------------------------------------------------------------------------------------


def test_labels_signer_records_and_trust_anchors(cli: Cli, generator: GenAiSystem, mixed: Path) -> None:
    _, out, _ = cli("labels", "signer", "--json")
    signer = json.loads(out)
    assert signer["local_test_ca"] is True and generator.tenant.bin in signer["subject"]
    _, out, _ = cli("labels", "signer")
    assert "LOCAL TEST CA" in out and signer["fingerprint"] in out
    assert [s["fingerprint"] for s in json.loads(cli("labels", "signers", "--json")[1])] == [signer["fingerprint"]]

    cli("label", mixed / "hero.png", mixed / "thumb.jpg", "--system", generator.code)
    listed = json.loads(cli("labels", "records", "--json")[1])
    assert [r["media_type"] for r in listed] == ["image/jpeg", "image/png"]
    assert len(json.loads(cli("labels", "records", "--json", "--limit", "1")[1])) == 1
    _, out, _ = cli("labels", "records")
    assert listed[0]["record_id"] in out and "hero" not in out

    _, pem, _ = cli("labels", "trust-anchors", "--pem")
    assert pem.startswith("-----BEGIN CERTIFICATE-----")
    anchors = json.loads(cli("labels", "trust-anchors", "--json")[1])
    assert len(anchors) == 1 and anchors[0]["local_test"] is True


def test_a_mov_becomes_an_mp4_next_to_it_and_is_not_relabeled_in_place(
        cli: Cli, platform: Platform, generator: GenAiSystem, tmp_path: Path) -> None:
    clip = tmp_path / "clip.mov"
    clip.write_bytes(media.mp4(seconds=0.5, w=96, h=64, container="mov"))
    original = sha(clip)
    _, _, err = cli("label", clip, "--system", generator.code, "--in-place", code=1)
    assert "[--in-place]" in err and "video/mp4" in err and sha(clip) == original
    assert records(platform, generator.tenant) == []  # refused inside the transaction: nothing issued
    cli("label", clip, "--system", generator.code)
    report = labels_for(platform).verify((tmp_path / "clip.ai.mp4").read_bytes())
    assert report.state == "trusted" and report.media_type == "video/mp4"
