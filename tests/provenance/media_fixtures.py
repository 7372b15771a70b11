"""Small real media files, generated in code, for the label tests.

Every file is made by the real library that writes that format (Pillow, the stdlib ``wave`` module, PyAV's
libx264 and AAC encoders, python-docx), so a label test exercises the same parsers a user's upload would.
Contents are seeded: the same call returns the same picture, tone and text on every run. Each file is tiny
(a few KB) to keep the tests fast.
"""

from __future__ import annotations

import io
import math
import wave
from fractions import Fraction

import numpy as np
from PIL import Image

SEED = 20260123


def picture(w: int = 64, h: int = 48, *, seed: int = SEED) -> Image.Image:
    """A gradient with seeded noise and a few blocks: textured enough that a band over it is detectable."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    rgb = np.stack([
        (x * 255 // max(w - 1, 1)),
        (y * 255 // max(h - 1, 1)),
        ((x + y) * 255 // max(w + h - 2, 1)),
    ], axis=-1).astype(np.int16)
    rgb += rng.integers(-12, 13, size=rgb.shape, dtype=np.int16)
    for _ in range(3):
        bx, by = int(rng.integers(0, max(w - w // 4, 1))), int(rng.integers(0, max(h - h // 4, 1)))
        rgb[by:by + h // 4, bx:bx + w // 4] = rng.integers(0, 256, size=3)
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB")


def _save(image: Image.Image, fmt: str, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def png(w: int = 64, h: int = 48) -> bytes:
    return _save(picture(w, h), "PNG")


def jpeg(w: int = 64, h: int = 48, quality: int = 90) -> bytes:
    return _save(picture(w, h), "JPEG", quality=quality)


def webp(w: int = 64, h: int = 48, quality: int = 90) -> bytes:
    return _save(picture(w, h), "WEBP", quality=quality)


def tone(seconds: float = 0.5, rate: int = 16000, channels: int = 1, *, frequency: float = 440.0) -> np.ndarray:
    """Float samples in [-1, 1], shape (frames, channels): a sine per channel (a fifth apart) plus seeded noise."""
    frames = int(round(seconds * rate))
    t = np.arange(frames) / rate
    rng = np.random.default_rng(SEED)
    columns = [0.5 * np.sin(2 * math.pi * frequency * (1.5 ** c) * t) for c in range(channels)]
    return np.stack(columns, axis=1) + rng.uniform(-0.01, 0.01, size=(frames, channels))


def pcm_bytes(samples: np.ndarray, width: int) -> bytes:
    """Float samples → little-endian PCM as WAV stores it (8-bit unsigned, wider signed)."""
    if width == 1:
        return np.clip(np.round(samples * 127 + 128), 0, 255).astype(np.uint8).tobytes()
    full = float(2 ** (8 * width - 1) - 1)
    ints = np.clip(np.round(samples * full), -full - 1, full).astype("<i4")
    if width == 2:
        return ints.astype("<i2").tobytes()
    if width == 4:
        return ints.tobytes()
    # 24-bit: the low three bytes of each little-endian int32
    return ints.reshape(-1, 1).view(np.uint8)[:, :3].tobytes()


def wav(seconds: float = 0.5, rate: int = 16000, channels: int = 1, width: int = 2) -> bytes:
    """A PCM WAV of a real tone (``width`` in bytes: 1, 2, 3 or 4)."""
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(pcm_bytes(tone(seconds, rate, channels), width))
    return out.getvalue()


def mp4(seconds: float = 1, w: int = 160, h: int = 120, fps: int = 10, audio: bool = True,
        container: str = "mp4", rotation: int = 0, video: bool = True) -> bytes:
    """H.264 video (libx264, yuv420p) of a picture panning sideways, with a mono AAC tone when ``audio``.

    ``container="mov"`` gives a QuickTime file with the same streams; ``rotation`` (degrees counter-clockwise)
    records a display rotation the way phones do; ``video=False`` gives a sound-only MP4 (an .m4a in effect).
    """
    import av

    out = io.BytesIO()
    rate = 16000
    with av.open(out, "w", format=container) as box:
        picture_stream = box.add_stream("libx264", rate=fps) if video else None
        if picture_stream is not None:
            picture_stream.width, picture_stream.height, picture_stream.pix_fmt = w, h, "yuv420p"
            picture_stream.options = {"preset": "ultrafast", "crf": "28"}
            if rotation:
                picture_stream.set_display_rotation(rotation)
        sound = box.add_stream("aac", rate=rate, layout="mono") if audio else None
        frames = int(round(seconds * fps)) if video else 0
        base = np.asarray(picture(w * 2, h))
        for i in range(frames):
            shift = (i * w) // max(frames, 1)
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(base[:, shift:shift + w]), format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1, fps)
            box.mux(picture_stream.encode(frame))
        if picture_stream is not None:
            box.mux(picture_stream.encode())
        if sound is not None:
            samples = tone(seconds, rate, 1)[:, 0].astype(np.float32)
            for start in range(0, len(samples), 1024):
                piece = np.ascontiguousarray(samples[start:start + 1024].reshape(1, -1))
                chunk = av.AudioFrame.from_ndarray(piece, format="fltp", layout="mono")
                chunk.sample_rate = rate
                chunk.pts = start
                chunk.time_base = Fraction(1, rate)
                box.mux(sound.encode(chunk))
            box.mux(sound.encode())
    return out.getvalue()


def pdf(pages: int = 2, w: int = 200, h: int = 150) -> bytes:
    """A PDF (Pillow's writer), one seeded picture per page."""
    images = [picture(w, h, seed=SEED + i) for i in range(pages)]
    out = io.BytesIO()
    images[0].save(out, "PDF", save_all=True, append_images=images[1:], resolution=72.0)
    return out.getvalue()


def docx(paragraphs: tuple[str, ...] = ("Quarterly summary.", "Prepared by the content team.")) -> bytes:
    import docx as python_docx

    document = python_docx.Document()
    for paragraph in paragraphs:
        document.add_paragraph(paragraph)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def text() -> bytes:
    """UTF-8 text in the three languages."""
    return ("Жаңа каталог маусымда шығады.\n"
            "Новый каталог выйдет в июне.\n"
            "The new catalogue comes out in June.\n").encode()
