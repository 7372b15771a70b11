"""The warning people see on AI-generated pictures and documents (L-AI-LABEL).

The AI law lets synthetic results (L-AI-DEF) be distributed only with a machine-readable marking *and* "a visible
or other warning the user perceives unobstructed"; leaving it out is fined under CoAO Art.641-1 (L-FINE-AI). The
signed C2PA manifest is the machine-readable part; this module draws the part people perceive:

* **A band** (:func:`render_band`) across the full width of the picture, at the top, the bottom or the centre,
  with the warning in each chosen language (kk, ru, en): on one line "kk · ru · en" when that fits at a legible
  size, stacked one language a line otherwise. The font size follows the picture's height (about 3 %, never below
  11 px) and shrinks to the width; on big pictures the band takes at least 6 % of the height. Three contrasts:
  ``dark`` (white on near-black), ``light`` (black on near-white), ``high`` (yellow on black).
* **Tiles**, when ``tile=True``: the warning repeated faintly (about 30 % opacity, with an outline so it reads on
  light and dark content) in staggered rows, one language a row, over the whole picture. A band alone is removed
  by one crop; the tiles make every crop that keeps meaningful content keep a whole warning too.
* **A fingerprint** of the band (:func:`band_fingerprint`, checked by :func:`band_present`), kept in the signed
  manifest, so a verifier can tell from the pixels whether the band is still there after re-encoding (JPEG
  quality ≥ 70, PNG↔JPEG, scaled copies whose band stays ≥ about 10 px tall), and that it is gone when painted
  over (flat, with the photo under it, or only its words), cropped off, or the picture is another one — even if
  someone re-signed the file afterwards. A crop that moves the band reads as "no band": the tiles remain, but
  the band is not where the manifest says.
* **PDF** (:func:`stamp_pdf`): the same band, rendered as an image, laid over every page as the reader sees it
  (page rotation and crop box respected). **Word** (:func:`notice_docx`): a bold first paragraph.

Tiny pictures: below the width the full sentences need at 11 px, the band carries the short forms
"ЖИ · ИИ · AI" (and when even that does not fit, the first language's short form alone, at no less than 6 px), so
a 32×32 icon still gets a band (a font of 8 px, about 40 % of the icon's height: the price of the warning).

Determinism: the same picture and style give the same pixels (fixed font file, Pillow's basic layout engine, no
randomness), so the fingerprint in a manifest can be recomputed.

Speed: the band, the layout and each phrase's faint row are drawn once per size and style and cached (a video's
frames all reuse them), then pasted. A 1000×1000 picture costs about 11 ms on first use and 2 ms after, against
40–260 ms to encode it as PNG; an 8000×6000 one about 0.2 s.

Modes: RGB, RGBA, L and CMYK are drawn on a copy as they are; LA and P (PA) go through RGB(A) and back (P is
re-quantised to an adaptive palette); "1" through L and back dithered (so the faint tiles survive as dots);
16-bit and float greyscale (I, I;16, F) are drawn at 8-bit precision and returned in their mode; YCbCr, HSV, LAB
through RGB. The original image is never modified.
"""

from __future__ import annotations

import io
import math
import statistics
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from PIL import Image, ImageDraw, ImageFont

from ..core.errors import InvalidInput
from .texts import LANGUAGES, WARNING_TEXTS

FONT_DIR = Path(__file__).with_name("fonts")
FONT_REGULAR = FONT_DIR / "DejaVuSans.ttf"
FONT_BOLD = FONT_DIR / "DejaVuSans-Bold.ttf"

POSITIONS = ("top", "bottom", "center")
CONTRASTS = ("dark", "light", "high")
MAX_TEXT = 120
SEPARATOR = " · "
# Short forms for pictures too small for the sentences: "жасанды интеллект", "искусственный интеллект", "AI".
SHORT_TEXTS: dict[str, str] = {"kk": "ЖИ", "ru": "ИИ", "en": "AI"}

MIN_LEGIBLE_PX = 11  # below this, people at normal viewing distance stop reading Cyrillic reliably
MIN_TINY_PX = 6
FONT_SHARE = 0.03  # font size as a share of the picture's height
BAND_MIN_SHARE = 0.06  # the band's minimum share of a big picture's height
TILE_ALPHA = 80  # of 255: faint, but perceptible on any content thanks to the outline

# band background, text; tile fill, tile outline
_COLOURS: dict[str, tuple[tuple[int, int, int], tuple[int, int, int], tuple[int, int, int], tuple[int, int, int]]] = {
    "dark": ((20, 20, 20), (255, 255, 255), (255, 255, 255), (0, 0, 0)),
    "light": ((250, 250, 250), (0, 0, 0), (0, 0, 0), (255, 255, 255)),
    "high": ((0, 0, 0), (255, 230, 0), (255, 230, 0), (0, 0, 0)),
}

# Fingerprint: the band's box reduced to 64×8 grey cells; 2 bytes (median, spread) + 512 bits (cell > mean).
HASH_COLUMNS, HASH_ROWS = 64, 8
HASH_BITS = HASH_COLUMNS * HASH_ROWS
HAMMING_TOLERANCE = 64  # of 512 bits, at most a third of the letter cells; JPEG q70 flips < 15
MEDIAN_TOLERANCE = 48
ASPECT_TOLERANCE = 0.02


@dataclass(frozen=True)
class WarningStyle:
    """How the warning looks; validated by :meth:`validate` (every adapter's input ends up here)."""

    position: Literal["top", "bottom", "center"] = "bottom"
    languages: tuple[str, ...] = ("kk", "ru", "en")
    texts: Mapping[str, str] | None = None  # per-language override; default WARNING_TEXTS
    contrast: Literal["dark", "light", "high"] = "dark"
    tile: bool = True

    def validate(self) -> None:
        """Raise :class:`InvalidInput` naming the field ("position", "languages", "texts.kk", "contrast", "tile")."""
        if self.position not in POSITIONS:
            raise InvalidInput("the warning's position must be top, bottom or center", field="position")
        if self.contrast not in CONTRASTS:
            raise InvalidInput("the warning's contrast must be dark, light or high", field="contrast")
        if not isinstance(self.tile, bool):
            raise InvalidInput("tile must be true or false", field="tile")
        languages = self.languages
        if isinstance(languages, str) or not isinstance(languages, Sequence) or not languages:
            raise InvalidInput("choose at least one warning language (kk, ru, en)", field="languages")
        if any(lang not in LANGUAGES for lang in languages):
            raise InvalidInput("warning languages must be among kk, ru, en", field="languages")
        if len(set(languages)) != len(languages):
            raise InvalidInput("a warning language is listed twice", field="languages")
        if self.texts is None:
            return
        if not isinstance(self.texts, Mapping):
            raise InvalidInput("texts must map a language to its warning", field="texts")
        for lang, text in self.texts.items():
            if lang not in LANGUAGES:
                raise InvalidInput("texts may only be given for kk, ru, en", field="texts")
            field = f"texts.{lang}"
            if not isinstance(text, str) or not text.strip():
                raise InvalidInput("the warning text is empty", field=field)
            if len(text) > MAX_TEXT:
                raise InvalidInput(f"the warning text is longer than {MAX_TEXT} characters", field=field)
            # control and format characters (bidi overrides, zero-width) could hide or reorder the warning
            if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn") for ch in text):
                raise InvalidInput("the warning text contains control or invisible characters", field=field)

    def text_for(self, language: str) -> str:
        if self.texts and self.texts.get(language):
            return self.texts[language].strip()
        return WARNING_TEXTS[language]

    def phrases(self) -> list[str]:
        return [self.text_for(lang) for lang in self.languages]


# ---------------------------------------------------------------------------------------------------- layout

@lru_cache(maxsize=64)
def _font(size: int, bold: bool = True) -> ImageFont.FreeTypeFont:
    # BASIC layout: no dependence on whether libraqm is installed, so the pixels (and fingerprints) are the same
    # everywhere; Kazakh and Russian Cyrillic need no shaping.
    return ImageFont.truetype(str(FONT_BOLD if bold else FONT_REGULAR), size, layout_engine=ImageFont.Layout.BASIC)


def _width(text: str, size: int, bold: bool = True) -> float:
    return _font(size, bold).getlength(text)


def _fit(lines: Sequence[str], size: int, avail: float, minimum: int) -> int | None:
    """The largest size ≤ ``size`` (and ≥ ``minimum``) at which every line fits ``avail`` pixels, or None."""
    while size >= minimum:
        widest = max(_width(line, size) for line in lines)
        if widest <= avail:
            return size
        smaller = min(size - 1, math.floor(size * avail / widest))
        size = minimum if smaller < minimum < size else smaller
    return None


@dataclass(frozen=True)
class BandLayout:
    lines: tuple[str, ...]
    font_size: int
    line_height: int
    height: int  # band height in pixels
    short: bool  # the short forms (ЖИ · ИИ · AI) stand in for the sentences


def band_layout(width: int, height: int, style: WarningStyle, *, target: int | None = None,
                minimum: int = MIN_LEGIBLE_PX, min_share: float = BAND_MIN_SHARE) -> BandLayout:
    """Where the words go in a band across a ``width``×``height`` picture (see the module doc)."""
    return _band_layout(width, height, tuple(style.languages), tuple(style.phrases()), target, minimum, min_share)


@lru_cache(maxsize=32)
def _band_layout(width: int, height: int, languages: tuple[str, ...], phrases: tuple[str, ...], target: int | None,
                 minimum: int, min_share: float) -> BandLayout:
    target = max(minimum, round(height * FONT_SHARE)) if target is None else max(minimum, target)
    tiny = max(MIN_TINY_PX, min(minimum, round(minimum * 6 / 11)))

    def pad(size: int) -> int:
        return max(2, round(size * 0.6))

    lines: list[str] | None = None
    size: int | None = None
    short = False
    one = SEPARATOR.join(phrases)
    if _width(one, target) <= width - 2 * pad(target):
        lines, size = [one], target
    else:
        size = _fit(phrases, target, width - 2 * pad(target), minimum)
        if size is not None:
            lines = phrases
    if lines is None:
        short = True
        shorts = [SHORT_TEXTS[lang] for lang in languages]
        for candidate in (SEPARATOR.join(shorts), "/".join(shorts), shorts[0]):
            size = _fit([candidate], target, width - 2 * pad(tiny), tiny)
            if size is not None:
                lines = [candidate]
                break
        if lines is None:  # narrower than "AI" at 6 px: draw it anyway, clipped at the edges
            lines, size = [shorts[0]], tiny
    assert size is not None
    if short and height < 100:  # an icon: keep the band to about 40 % of it
        size = max(tiny, min(size, math.floor((0.4 * height - 2) / 1.25)))
    line_height = round(size * 1.25)
    band = len(lines) * line_height + 2 * max(1, round(size * (0.35 if not short else 0.1)))
    if height >= 200:
        band = max(band, math.ceil(height * min_share))
    return BandLayout(tuple(lines), size, line_height, min(band, height), short)


def band_box(width: int, height: int, band_height: int, position: str) -> tuple[int, int, int, int]:
    if position == "top":
        return (0, 0, width, band_height)
    if position == "center":
        top = (height - band_height) // 2
        return (0, top, width, top + band_height)
    return (0, height - band_height, width, height)


def draw_band(width: int, layout: BandLayout, contrast: str) -> Image.Image:
    """The band as an RGB picture ``width`` × ``layout.height``: text centred, a thin rule on both long edges."""
    return _draw_band(width, layout, contrast).copy()


@lru_cache(maxsize=16)
def _draw_band(width: int, layout: BandLayout, contrast: str) -> Image.Image:
    """:func:`draw_band`, cached (every frame of a video gets the same band): only pasted, never drawn on."""
    background, ink, _, _ = _COLOURS[contrast]
    band = Image.new("RGB", (width, layout.height), background)
    draw = ImageDraw.Draw(band)
    font = _font(layout.font_size)
    block = len(layout.lines) * layout.line_height
    top = (layout.height - block) / 2
    for i, line in enumerate(layout.lines):
        draw.text((width / 2, top + (i + 0.5) * layout.line_height), line, font=font, fill=ink, anchor="mm")
    rule = max(1, layout.height // 24)
    if layout.height > 4 * rule:
        draw.rectangle((0, 0, width - 1, rule - 1), fill=ink)
        draw.rectangle((0, layout.height - rule, width - 1, layout.height - 1), fill=ink)
    return band


@dataclass(frozen=True)
class TilePlacement:
    language: str
    text: str
    box: tuple[int, int, int, int]  # where the phrase's ink lies (may reach past the picture's edges)
    font_size: int
    origin: tuple[int, int]  # the text's left baseline point


@dataclass(frozen=True)
class _TileRow:
    language: str
    text: str
    y: int
    offset: int  # the strip is shifted left by this many pixels
    period: int


def _tile_font_size(width: int, height: int, phrases: Sequence[str]) -> tuple[int, bool]:
    size = max(MIN_LEGIBLE_PX, round(min(width, height) / 50))
    widest = max(_width(p, size) for p in phrases)
    # ≤ 30 % of the width: with staggered rows, any crop of half the width keeps a whole phrase of each language
    if widest > 0.3 * width:
        size = max(MIN_LEGIBLE_PX, math.floor(size * 0.3 * width / widest))
    widest = max(_width(p, size) for p in phrases)
    return size, widest > 0.9 * width  # too wide even at 11 px: tiles use the short forms


def _tile_rows(width: int, height: int, style: WarningStyle) -> tuple[int, tuple[_TileRow, ...]]:
    return _tile_rows_for(width, height, tuple(style.languages), tuple(style.phrases()))


@lru_cache(maxsize=32)  # video labels every frame of one size with one style: lay the rows out once
def _tile_rows_for(width: int, height: int, languages: tuple[str, ...],
                   phrases: tuple[str, ...]) -> tuple[int, tuple[_TileRow, ...]]:
    size, short = _tile_font_size(width, height, phrases)
    if short:
        phrases = tuple(SHORT_TEXTS[lang] for lang in languages)
    row_pitch = round(size * 3.4)
    rows: list[_TileRow] = []
    golden = (math.sqrt(5) - 1) / 2
    for r, y in enumerate(range(round(size * 0.8), height, row_pitch)):
        index = r % len(phrases)
        text = phrases[index]
        period = math.ceil(_width(text, size)) + round(size * 3)
        offset = int((r * golden * period) % period)  # staggered rows: every column sees a phrase start soon
        rows.append(_TileRow(languages[index], text, y, offset, period))
    return size, tuple(rows)


def tile_placements(width: int, height: int, style: WarningStyle) -> list[TilePlacement]:
    """Every faint phrase :func:`render_band` draws (before the band covers some): for checks and tests."""
    size, rows = _tile_rows(width, height, style)
    font = _font(size)
    out = []
    for row in rows:
        x0, y0, x1, y1 = font.getbbox(row.text, anchor="ls")
        for x in range(-row.offset, width, row.period):
            out.append(TilePlacement(row.language, row.text, (x + x0, row.y + y0, x + x1, row.y + y1), size,
                                     (x, row.y)))
    return out


def tile_stroke(size: int) -> int:
    """The outline width of the faint phrases: it keeps them readable on content of the text's own colour."""
    return max(1, round(size / 10))


@lru_cache(maxsize=16)
def _tile_stamp(text: str, size: int, contrast: str) -> tuple[Image.Image, int, int]:
    """One faint phrase with its outline, drawn once: (picture, x of the text origin, y of the baseline)."""
    font = _font(size)
    _, _, fill, outline = _COLOURS[contrast]
    stroke = tile_stroke(size)
    ascent, descent = font.getmetrics()
    stamp = Image.new("RGBA", (math.ceil(font.getlength(text)) + 2 * stroke + 2, ascent + descent + 2 * stroke),
                      (0, 0, 0, 0))
    ImageDraw.Draw(stamp).text((stroke, ascent + stroke), text, font=font, fill=(*fill, TILE_ALPHA), anchor="ls",
                               stroke_width=stroke, stroke_fill=(*outline, TILE_ALPHA))
    return stamp, stroke, ascent + stroke


@lru_cache(maxsize=16)
def _tile_strip(text: str, size: int, period: int, width: int, contrast: str) -> tuple[Image.Image, int]:
    """A row of the phrase every ``period`` pixels, ``width + period`` wide (rows crop it at their offset).
    Cached: never drawn on by callers."""
    stamp, left, baseline = _tile_stamp(text, size, contrast)
    strip = Image.new("RGBA", (width + period + stamp.width, stamp.height), (0, 0, 0, 0))
    for x in range(0, width + period, period):
        strip.paste(stamp, (x - left, 0))  # stamps never overlap: the period exceeds a phrase by 3 font sizes
    return strip, baseline


def _draw_tiles(work: Image.Image, style: WarningStyle) -> None:
    """Paste the faint staggered rows onto ``work`` in place: each language's strip is drawn once and reused."""
    width, height = work.size
    size, rows = _tile_rows(width, height, style)
    if not rows:
        return
    for row in rows:
        strip, strip_top = _tile_strip(row.text, size, row.period, width, style.contrast)
        strip_height = strip.height
        piece = strip.crop((row.offset, 0, row.offset + width, strip_height))
        top = row.y - strip_top
        if work.mode == "RGBA":
            box = (0, top, width, top + strip_height)
            region = work.crop(box)
            region.alpha_composite(piece)
            work.paste(region, box)
        else:
            work.paste(piece, (0, top), piece)  # alpha-blends; the piece is converted to the picture's mode


# ---------------------------------------------------------------------------------------------------- pictures

WIDE_MODES = ("I", "I;16", "I;16L", "I;16B", "I;16N", "F")


def _wide_top(image: Image.Image) -> float:
    """The white level of a 16-bit or float greyscale picture (decided on the whole picture, so a verifier looking
    at the band's box alone scales it the same way)."""
    if image.mode.startswith("I;16"):
        return 65535
    high = image.getextrema()[1]
    if image.mode == "F":
        return 1.0 if high <= 1.0 else 255
    return 65535 if high > 255 else 255


def _wide_to_grey(image: Image.Image, top: float) -> Image.Image:
    wide = image.convert("F") if image.mode == "F" else image.convert("I")
    return wide.point(lambda v: v * 255 / top).convert("L")


def _working_copy(image: Image.Image) -> tuple[Image.Image, Any]:
    """A copy in a mode Pillow draws in, and how to turn the result back into the original mode."""
    mode = image.mode
    if mode in ("RGB", "RGBA", "L", "CMYK"):
        return image.copy(), lambda im: im
    if mode == "LA":
        return image.convert("RGBA"), lambda im: im.convert("LA")
    if mode in ("P", "PA"):
        transparent = mode == "PA" or image.has_transparency_data  # a transparency index or an RGBA palette
        work = image.convert("RGBA" if transparent else "RGB")

        def back(im: Image.Image) -> Image.Image:
            method = Image.Quantize.FASTOCTREE if im.mode == "RGBA" else Image.Quantize.MEDIANCUT
            out = im.quantize(colors=256, method=method, dither=Image.Dither.NONE)
            return out.convert("PA") if mode == "PA" else out

        return work, back
    if mode == "1":
        # dithered back: black and white stay exact, the faint tiles become a dot pattern instead of vanishing
        return image.convert("L"), lambda im: im.convert("1", dither=Image.Dither.FLOYDSTEINBERG)
    if mode in WIDE_MODES:
        top = _wide_top(image)
        work = _wide_to_grey(image, top)

        def back_wide(im: Image.Image) -> Image.Image:
            out = im.convert("F").point(lambda v: v * top / 255)
            return out if mode == "F" else out.convert("I").convert(mode) if mode != "I" else out.convert("I")

        return work, back_wide
    try:
        work = image.convert("RGB")
        work.convert(mode)
    except (ValueError, OSError):
        raise InvalidInput(f"pictures in colour mode {mode} can't be labeled: convert to RGB first",
                           field="file") from None
    return work, lambda im: im.convert(mode)


def render_band(image: Image.Image, style: WarningStyle) -> tuple[Image.Image, dict[str, Any]]:
    """Return a NEW image (original untouched) with the tiles and the band drawn, and ``info`` for the manifest:
    {"kind": "band", "position", "languages", "contrast", "tile", "box": [x0, y0, x1, y1], "fingerprint": hex,
    "size": [w, h]} (L-AI-LABEL)."""
    style.validate()
    if not isinstance(image, Image.Image):
        raise InvalidInput("not a picture", field="file")
    width, height = image.size
    if width < 1 or height < 1:
        raise InvalidInput("the picture is empty", field="file")
    work, back = _working_copy(image)
    if style.tile:
        _draw_tiles(work, style)
    layout = band_layout(width, height, style)
    box = band_box(width, height, layout.height, style.position)
    band = _draw_band(width, layout, style.contrast)
    if work.mode == "RGBA":
        band = band.convert("RGBA")  # opaque: the band is seen even on a transparent picture
    work.paste(band, box[:2])
    words = max(_font(layout.font_size).getlength(line) for line in layout.lines)
    text_share = min(1.0, (words + 2 * layout.font_size) / width)
    out = back(work)
    if out.mode != image.mode:
        out = out.convert(image.mode)
    info = {
        "kind": "band",
        "position": style.position,
        "languages": list(style.languages),
        "contrast": style.contrast,
        "tile": bool(style.tile),
        "box": list(box),
        "fingerprint": band_fingerprint(out, box, text_share),
        "size": [width, height],
    }
    return out, info


def band_fingerprint(image: Image.Image, box: Sequence[int], text_share: float) -> str:
    """A perceptual hash of the band at ``box``, as hex: the median grey and its spread over the whole box (a field
    painted over or flattened changes them), the share of the width the words take, and 512 bits "cell brighter
    than the mean" over the words' part of the box without its edge rules (so the bits are about the letters, and
    a wide band whose words take a third of it still has letters in most cells). Coarse cells average JPEG's
    ringing and a rescale away, and the bits are relative to the region's own mean, so gamma shifts don't matter."""
    whole = _cells(image, box)
    median = int(statistics.median_low(whole))
    spread = min(255, round(statistics.pstdev(whole)))
    share = min(255, max(1, round(text_share * 255)))
    cells = _cells(image, _words_box(box, share))
    mean = sum(cells) / len(cells)
    bits = 0
    for value in cells:
        bits = (bits << 1) | (1 if value > mean else 0)
    return f"{median:02x}{spread:02x}{share:02x}{bits:0{HASH_BITS // 4}x}"


def _words_box(box: Sequence[int], share: int) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = box
    width, height = x1 - x0, y1 - y0
    half = width * share / 255 / 2
    margin = height / 12  # past the rules (height // 24 thick) on both long edges
    centre = x0 + width / 2
    left, right = max(x0, math.floor(centre - half)), min(x1, math.ceil(centre + half))
    top, bottom = round(y0 + margin), round(y1 - margin)
    if bottom - top < 1:
        top, bottom = y0, y1
    return (left, top, max(right, left + 1), bottom)


def _cells(image: Image.Image, box: Sequence[int]) -> list[int]:
    region = image.crop(tuple(box))
    if image.mode in WIDE_MODES:
        region = _wide_to_grey(region, _wide_top(image))
    elif region.mode in ("P", "PA"):
        region = region.convert("RGBA")  # a palette's transparency is honoured, not warned about
    elif region.mode not in ("L", "RGB", "RGBA"):
        region = region.convert("RGB")
    region = region.convert("L")
    return list(region.resize((HASH_COLUMNS, HASH_ROWS), Image.Resampling.BOX).tobytes())


def _parse_fingerprint(fingerprint: str) -> tuple[int, int, int, int]:
    if len(fingerprint) != 6 + HASH_BITS // 4:
        raise ValueError("fingerprint length")
    return (int(fingerprint[:2], 16), int(fingerprint[2:4], 16), int(fingerprint[4:6], 16), int(fingerprint[6:], 16))


def band_present(image: Image.Image, info: Mapping[str, Any]) -> bool:
    """True when the band described by ``info`` is still visible at ``info["box"]`` (fingerprint within
    tolerance). A scaled copy is checked at the scaled box; a cropped picture only where the box still fits
    (a crop that moved the band is reported as no band: the tiles may remain, but the band the manifest
    describes is not where it said)."""
    try:
        box = [int(v) for v in info["box"]]
        size = [int(v) for v in info["size"]]
        median0, spread0, share, bits0 = _parse_fingerprint(str(info["fingerprint"]))
    except (KeyError, TypeError, ValueError):
        raise InvalidInput("the warning record has no band box, size or fingerprint", field="warning") from None
    if info.get("kind") != "band" or len(box) != 4 or len(size) != 2 or min(size) < 1:
        raise InvalidInput("the warning record is not a band", field="warning")
    width, height = image.size
    if (width, height) != tuple(size):
        sx, sy = width / size[0], height / size[1]
        if abs(sx - sy) <= ASPECT_TOLERANCE * max(sx, sy):  # a scaled copy
            box = [round(box[0] * sx), round(box[1] * sy), round(box[2] * sx), round(box[3] * sy)]
    x0, y0, x1, y1 = box
    if x0 < 0 or y0 < 0 or x1 > width or y1 > height or x1 - x0 < 2 or y1 - y0 < 2:
        return False
    median, spread, _, bits = _parse_fingerprint(band_fingerprint(image, box, share / 255))
    if abs(median - median0) > MEDIAN_TOLERANCE or spread < spread0 / 2:  # another field, or painted flat
        return False
    letters = min(bits0.bit_count(), HASH_BITS - bits0.bit_count())
    tolerance = max(8, min(HAMMING_TOLERANCE, letters // 3))
    return (bits ^ bits0).bit_count() <= tolerance


# ---------------------------------------------------------------------------------------------------- documents

PDF_PX_PER_PT = 3  # the band is drawn at 216 dpi: crisp in print and on zoom
PDF_FONT_PT = 9.0  # smallest font on a page; grows with big pages
PDF_MIN_PT = 6.0


def _pdf_band_page(view_width: float, view_height: float, style: WarningStyle) -> tuple[Any, float]:
    from pypdf import PdfReader

    px_width = max(1, round(view_width * PDF_PX_PER_PT))
    px_height = max(1, round(view_height * PDF_PX_PER_PT))
    target = round(max(PDF_FONT_PT, view_height * 0.012) * PDF_PX_PER_PT)
    layout = band_layout(px_width, px_height, style, target=target, minimum=round(PDF_MIN_PT * PDF_PX_PER_PT),
                         min_share=0.0)
    band = draw_band(px_width, layout, style.contrast)
    buffer = io.BytesIO()
    band.save(buffer, "PDF", resolution=72.0 * PDF_PX_PER_PT, quality=95, subsampling=0)
    page = PdfReader(io.BytesIO(buffer.getvalue())).pages[0]
    return page, layout.height / PDF_PX_PER_PT


def _view_to_user(rotation: int, x0: float, y0: float, w: float, h: float, tu: float, tv: float) -> tuple[float, ...]:
    """The matrix taking band coordinates (origin at the band's lower left, placed at (tu, tv) in the page as
    seen, i.e. after /Rotate) to the page's user space; (x0, y0, w, h) is the crop box."""
    if rotation == 90:
        return (0, 1, -1, 0, x0 + w - tv, y0 + tu)
    if rotation == 180:
        return (-1, 0, 0, -1, x0 + w - tu, y0 + h - tv)
    if rotation == 270:
        return (0, -1, 1, 0, x0 + tv, y0 + h - tu)
    return (1, 0, 0, 1, x0 + tu, y0 + tv)


def stamp_pdf(data: bytes, style: WarningStyle) -> tuple[bytes, dict[str, Any]]:
    """A visible band on every page of a PDF, laid over the content as the page is seen (L-AI-LABEL).
    Returns the new PDF and {"kind": "pdf-band", "pages", "position", "languages"}."""
    from pypdf import PdfReader, PdfWriter, Transformation

    style.validate()
    try:
        reader = PdfReader(io.BytesIO(bytes(data)), strict=False)
        encrypted = reader.is_encrypted
    except Exception:
        raise InvalidInput("the PDF file is corrupt or truncated", field="file") from None
    if encrypted:
        raise InvalidInput("the PDF is encrypted (password-protected): remove the protection, then label it",
                           field="file")
    bands: dict[tuple[float, float], tuple[Any, float]] = {}
    try:
        if len(reader.pages) == 0:
            raise InvalidInput("the PDF has no pages", field="file")
        writer = PdfWriter(clone_from=reader)
        for page in writer.pages:
            box = page.cropbox
            left, right = sorted((float(box.left), float(box.right)))
            bottom, top = sorted((float(box.bottom), float(box.top)))
            w, h = right - left, top - bottom
            if w < 1 or h < 1:
                raise InvalidInput("a PDF page has an empty page box", field="file")
            rotation = (page.rotation or 0) % 360
            rotation = rotation if rotation in (0, 90, 180, 270) else 0
            view_w, view_h = (h, w) if rotation in (90, 270) else (w, h)
            key = (round(view_w, 2), round(view_h, 2))
            if key not in bands:
                bands[key] = _pdf_band_page(view_w, view_h, style)
            band_page, band_h = bands[key]
            tv = {"bottom": 0.0, "top": view_h - band_h, "center": (view_h - band_h) / 2}[style.position]
            matrix = _view_to_user(rotation, left, bottom, w, h, 0.0, tv)
            page.merge_transformed_page(band_page, Transformation(matrix), over=True, expand=False)
        out = io.BytesIO()
        writer.write(out)
    except InvalidInput:
        raise
    except Exception:
        raise InvalidInput("the PDF file is corrupt or truncated", field="file") from None
    return out.getvalue(), {"kind": "pdf-band", "pages": len(writer.pages), "position": style.position,
                            "languages": list(style.languages)}


def notice_docx(data: bytes, style: WarningStyle, *, stored: bool = True) -> tuple[bytes, dict[str, Any]]:
    """A bold notice, one language a line, as the first paragraph of a Word document (L-AI-LABEL).
    Returns the new .docx and {"kind": "docx-notice", "languages"}.

    ``stored``: write the package's members uncompressed (ZIP "stored"). The c2pa-rs inside c2pa-python 0.38
    reads no deflated ZIP members ("compression method not supported: 8"), so a deflated .docx cannot carry the
    signed manifest; Word and LibreOffice open stored packages as usual. The file grows (text parts are no longer
    compressed; pictures in it were compressed already)."""
    import docx
    from docx.shared import Pt

    style.validate()
    try:
        document = docx.Document(io.BytesIO(bytes(data)))
    except Exception:
        raise InvalidInput("the file is not a readable Word (.docx) document", field="file") from None
    paragraph = document.add_paragraph()
    for i, phrase in enumerate(style.phrases()):
        run = paragraph.add_run(phrase)
        run.bold = True
        run.font.size = Pt(12)
        if i < len(style.languages) - 1:
            run.add_break()
    body = document.element.body
    body.remove(paragraph._p)
    body.insert(0, paragraph._p)
    out = io.BytesIO()
    document.save(out)
    result = _as_stored_zip(out.getvalue()) if stored else out.getvalue()
    return result, {"kind": "docx-notice", "languages": list(style.languages)}


def _as_stored_zip(package: bytes) -> bytes:
    """The same ZIP package with every member stored uncompressed, in the same order."""
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(package)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as target:
        for member in source.infolist():
            copy = zipfile.ZipInfo(member.filename, date_time=member.date_time)
            copy.external_attr, copy.compress_type = member.external_attr, zipfile.ZIP_STORED
            target.writestr(copy, source.read(member))
    return out.getvalue()
