"""How much does labeling an AI-generated picture cost, against just re-encoding it?

Workload: ``--n`` distinct 1-megapixel pictures (1000×1000, a gradient with shapes and film grain, so they compress
like photographs rather than flat colour), PNG and JPEG. For each format, in the same run and alternately (best
of ``--repeats``, so the ratio survives a noisy machine):

* **floor** — what any pipeline that touches the picture pays: Pillow decodes it and encodes it again in the same
  format with the same settings qorgau uses (PNG compress level 6; JPEG quality 92, 4:4:4);
* **label** — ``Labels.label`` through the service, as ``POST /api/v1/labels`` runs it: sniff the format, decode,
  draw the kk/ru/en warning band and its crop-proof tiling, encode, build and sign the C2PA manifest (ES256 with the
  operator's certificate from the local test CA), write the label record and the audit entry, commit (SQLite);
* **verify** — ``Labels.verify`` on the labeled files (read the manifest, check signature, hashes and trust, check
  the band's pixels), against the floor of decoding the picture.

Goal (issue 9): label+sign ≤ 3× the floor. Run: ``.venv/bin/python bench/labels.py`` (about a minute).
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _common import cpu_and_python, update_results_section  # noqa: E402

RESULTS = ROOT / "bench" / "RESULTS.md"
SECTION = "labels: AI content labeling (issue 9)"
INTRO = ("`bench/labels.py`: labeling 1-megapixel pictures through the service (warning band + C2PA manifest signed "
         "with ES256 + label record and audit entry, SQLite) against a plain Pillow decode + re-encode of the same "
         "pictures in the same run (the floor), best of several alternating rounds. Goal (issue 9): ≤ 3× the floor.\n")
GOAL_RATIO = 3.0


def pictures(n: int, fmt: str, size: int = 1000) -> list[bytes]:
    """``n`` distinct photo-like pictures: gradient, shapes and grain (seeded, so every run is the same)."""
    import numpy as np
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(20261123)
    out = []
    base = np.asarray(Image.linear_gradient("L").resize((size, size)), dtype=np.int16)
    for i in range(n):
        rgb = np.stack([base, np.flipud(base), np.roll(base, i * 37, axis=1)], axis=-1)
        rgb = rgb + rng.integers(-12, 13, size=rgb.shape, dtype=np.int16)
        image = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB")
        draw = ImageDraw.Draw(image)
        draw.ellipse((100 + i % 200, 150, 600, 650), fill=(230, 180 - i % 50, 40))
        draw.rectangle((500, 400 + i % 100, 900, 900), fill=(40, 120, 200 - i % 60))
        buf = io.BytesIO()
        if fmt == "PNG":
            image.save(buf, "PNG", compress_level=6)
        else:
            image.save(buf, "JPEG", quality=92, subsampling=0)
        out.append(buf.getvalue())
    return out


def reencode(data: bytes, fmt: str) -> bytes:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        image.load()
        buf = io.BytesIO()
        if fmt == "PNG":
            image.save(buf, "PNG", compress_level=6)
        else:
            image.save(buf, "JPEG", quality=92, subsampling=0)
    return buf.getvalue()


def decode(data: bytes) -> None:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        image.load()


def best_rate(n: int, run: Callable[[], None], rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return n / best


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=20, help="distinct pictures per format")
    ap.add_argument("--repeats", type=int, default=3, help="alternating rounds; the best of each is kept")
    ap.add_argument("--no-record", action="store_true", help="don't update bench/RESULTS.md")
    args = ap.parse_args(argv)

    from qorgau.core.auth import Principal
    from qorgau.core.settings import Settings
    from qorgau.core.platform import Platform
    from qorgau.core import auth
    from qorgau.aisystems.register import register_for
    from qorgau.provenance.service import labels_for

    sys.path.insert(0, str(ROOT / "tests"))
    from tests.provenance.conftest import image_generator_facts

    workdir = Path(tempfile.mkdtemp(prefix="qorgau-bench-labels-"))
    platform = Platform.initialize(Settings(data_dir=workdir, database_url=f"sqlite:///{workdir}/qorgau.db"))
    with platform.db.transaction() as s:
        org = auth.create_organization(s, name="Bench Market LLP", bin="050140000011", actor="bench")
        org_id = org.id
    with platform.db.transaction(org_id) as s:
        register_for(platform).register_system(s, code="gen", name="Bench image generator",
                                               facts=image_generator_facts(), actor="bench")
    principal = Principal(kind="system", id=1, organization_id=org_id, roles=frozenset({"dpo"}))
    labels = labels_for(platform)

    rows: list[tuple[str, float, float, float, float, float]] = []
    for fmt in ("PNG", "JPEG"):
        images = pictures(args.n, fmt)
        labeled: list[bytes] = []

        def label_all() -> None:
            labeled.clear()
            for data in images:
                with platform.db.transaction(org_id) as s:
                    labeled.append(labels.label(s, principal, data=data, filename=None, system="gen").data)

        def floor_all() -> None:
            for data in images:
                reencode(data, fmt)

        def verify_all() -> None:
            for data in labeled:
                report = labels.verify(data)
                assert report.state == "trusted" and report.warning_present, report.failures

        def decode_all() -> None:
            for data in labeled:
                decode(data)

        label_all()  # warm-up: signer, contexts, fonts
        floor_rate = label_rate = verify_rate = decode_rate = 0.0
        for _ in range(args.repeats):
            floor_rate = max(floor_rate, best_rate(args.n, floor_all, 1))
            label_rate = max(label_rate, best_rate(args.n, label_all, 1))
            decode_rate = max(decode_rate, best_rate(args.n, decode_all, 1))
            verify_rate = max(verify_rate, best_rate(args.n, verify_all, 1))
        rows.append((fmt, floor_rate, label_rate, floor_rate / label_rate, verify_rate, decode_rate / verify_rate))

    env = cpu_and_python()
    lines = [f"{k}: {v}" for k, v in env]
    lines.append(f"pictures: {args.n} per format, 1000×1000; best of {args.repeats} alternating rounds; "
                 f"load average {os.getloadavg()[0]:.2f}")
    header = "| format | floor: Pillow re-encode/s | label + sign/s | label ÷ floor (goal ≤ 3×) | verify/s | verify ÷ decode |"
    table = [header, "|---|---:|---:|---:|---:|---:|"]
    for fmt, floor_rate, label_rate, ratio, verify_rate, vratio in rows:
        verdict = "met" if ratio <= GOAL_RATIO else "MISSED"
        table.append(f"| {fmt} | {floor_rate:.1f} | {label_rate:.1f} | **{ratio:.2f}×** ({verdict}) | "
                     f"{verify_rate:.1f} | {vratio:.2f}× |")
    print("\n".join(lines + [""] + table))
    if not args.no_record:
        stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        body = f"### latest run ({stamp})\n\n" + "\n".join(f"- {line}" for line in lines) + "\n\n" + "\n".join(table) + "\n"
        update_results_section(RESULTS, SECTION, INTRO, "latest run", body)


if __name__ == "__main__":
    main()
