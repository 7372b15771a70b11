"""The visible warning on AI-generated pictures, PDFs and Word documents (L-AI-LABEL): real Pillow pictures,
real pypdf and python-docx documents, built in the tests."""

from __future__ import annotations

import io
import json
import random
import time

import docx
import pytest
from PIL import Image, ImageChops, ImageDraw
from pypdf import PdfReader, PdfWriter

from qorgau.core.errors import InvalidInput
from qorgau.provenance.overlay import (
    WarningStyle,
    _font,
    band_layout,
    band_present,
    notice_docx,
    render_band,
    stamp_pdf,
    tile_placements,
    tile_stroke,
)
from qorgau.provenance.texts import TRAINED, WARNING_TEXTS

BAND_COLOURS = {"dark": ((20, 20, 20), (255, 255, 255)), "light": ((250, 250, 250), (0, 0, 0)),
                "high": ((0, 0, 0), (255, 230, 0))}


def photo(width: int = 640, height: int = 480, seed: int = 1) -> Image.Image:
    """Photo-like: smooth colour gradients with sensor-like noise (deterministic)."""
    rng = random.Random(seed)
    horizontal = Image.linear_gradient("L").rotate(90 * (seed % 4)).resize((width, height))
    vertical = Image.linear_gradient("L").resize((width, height))
    noise = Image.frombytes("L", (width, height), rng.randbytes(width * height))
    rgb = Image.merge("RGB", (horizontal, vertical, ImageChops.invert(horizontal)))
    return Image.blend(rgb, Image.merge("RGB", (noise, noise, noise)), 0.25)


def reencode(image: Image.Image, fmt: str, **options) -> Image.Image:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    reopened = Image.open(io.BytesIO(out.getvalue()))
    reopened.load()
    return reopened


def _relative_luminance(rgb: tuple[int, int, int]) -> float:
    def channel(c: int) -> float:
        c = c / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (channel(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def wcag_contrast(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    la, lb = sorted((_relative_luminance(a), _relative_luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


# ------------------------------------------------------------------------------------------- the band


@pytest.mark.parametrize("contrast", ["dark", "light", "high"])
@pytest.mark.parametrize("position", ["top", "bottom", "center"])
def test_band_spans_the_full_width_at_its_position_in_high_contrast(position: str, contrast: str) -> None:
    picture = photo(800, 600)
    out, info = render_band(picture, WarningStyle(position=position, contrast=contrast))
    x0, y0, x1, y1 = info["box"]
    assert (x0, x1) == (0, 800) and out.size == (800, 600)
    assert {"top": y0 == 0, "bottom": y1 == 600, "center": abs((y0 + y1) / 2 - 300) <= 1}[position]
    band = out.crop(info["box"])
    colours = sorted(band.getcolors(800 * 600), reverse=True)
    background, ink = BAND_COLOURS[contrast]
    assert colours[0][1] == background  # the band is a solid field, not see-through
    ink_pixels = dict((c, n) for n, c in colours).get(ink, 0)
    assert ink_pixels > 0.03 * band.width * band.height  # words are there, in the ink colour
    assert wcag_contrast(background, ink) >= 7  # WCAG AAA for text
    assert info["position"] == position and info["contrast"] == contrast


def test_big_picture_gets_a_band_of_at_least_6_percent_with_all_three_sentences() -> None:
    layout = band_layout(1000, 1000, WarningStyle())
    assert layout.height >= 60 and layout.font_size >= 24 and not layout.short
    assert layout.lines == (WARNING_TEXTS["kk"], WARNING_TEXTS["ru"], WARNING_TEXTS["en"])  # stacked: too wide
    bigger = band_layout(4000, 3000, WarningStyle())
    assert bigger.font_size > layout.font_size and bigger.height >= 0.06 * 3000


def test_a_wide_banner_carries_the_languages_on_one_line() -> None:
    layout = band_layout(3000, 400, WarningStyle())
    assert layout.lines == (" · ".join(WARNING_TEXTS[lang] for lang in ("kk", "ru", "en")),)
    assert layout.font_size >= 11


def test_a_narrow_picture_shrinks_the_font_but_never_below_legible() -> None:
    layout = band_layout(300, 1200, WarningStyle())
    assert layout.font_size >= 11 and not layout.short
    assert max(_font(layout.font_size).getlength(line) for line in layout.lines) <= 300


def test_a_32px_icon_still_gets_a_band_with_the_short_form() -> None:
    icon = Image.new("RGB", (32, 32), (200, 100, 50))
    out, info = render_band(icon, WarningStyle())
    layout = band_layout(32, 32, WarningStyle())
    assert layout.short and layout.lines == ("ЖИ",)
    x0, y0, x1, y1 = info["box"]
    assert (x0, x1, y1) == (0, 32, 32) and 8 <= y1 - y0 <= 16
    assert (255, 255, 255) in {c for _, c in out.crop(info["box"]).getcolors(1024)}
    english = band_layout(32, 32, WarningStyle(languages=("en",)))
    assert english.lines == ("AI",)


def test_custom_text_is_what_the_band_says() -> None:
    style = WarningStyle(languages=("en", "kk"), texts={"en": "Made with AI"})
    layout = band_layout(2000, 800, style)
    assert layout.lines == (f"Made with AI · {WARNING_TEXTS['kk']}",)


def test_info_is_json_and_the_same_input_draws_the_same_pixels() -> None:
    picture = photo()
    first, info = render_band(picture, WarningStyle())
    second, again = render_band(picture, WarningStyle())
    assert json.loads(json.dumps(info)) == info == again
    assert first.tobytes() == second.tobytes()
    assert set(info) == {"kind", "position", "languages", "contrast", "tile", "box", "fingerprint", "size"}
    assert info["kind"] == "band" and info["size"] == [640, 480] and info["languages"] == ["kk", "ru", "en"]
    int(info["fingerprint"], 16)


def test_the_original_picture_is_not_touched() -> None:
    picture = photo()
    before = picture.tobytes()
    out, _ = render_band(picture, WarningStyle())
    assert picture.tobytes() == before and out is not picture and out.tobytes() != before


def _in_mode(mode: str) -> Image.Image:
    base = photo(300, 240, seed=3)
    if mode == "RGBA":
        alpha = Image.linear_gradient("L").resize((300, 240))
        return Image.merge("RGBA", (*base.split(), alpha))
    if mode == "LA":
        return Image.merge("LA", (base.convert("L"), Image.linear_gradient("L").resize((300, 240))))
    if mode == "P":
        return base.quantize(64)
    if mode == "I;16":
        return Image.linear_gradient("L").resize((300, 240)).convert("I").point(lambda v: v * 256).convert("I;16")
    return base.convert(mode)


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "P", "CMYK", "LA", "1", "I;16"])
def test_every_common_mode_comes_back_in_its_mode_and_size_with_the_band(mode: str) -> None:
    picture = _in_mode(mode)
    out, info = render_band(picture, WarningStyle())
    assert out.mode == mode and out.size == picture.size
    assert band_present(out, info)
    assert not band_present(picture, info)  # the band is new in the picture
    outside = (0, 0, 300, info["box"][1])  # above a bottom band, only the faint tiles changed the picture
    assert ImageChops.difference(out.crop(outside).convert("L"), picture.crop(outside).convert("L")).getbbox()


def test_transparent_picture_gets_an_opaque_band() -> None:
    clear = Image.new("RGBA", (400, 300), (0, 0, 0, 0))
    out, info = render_band(clear, WarningStyle(tile=False))
    assert out.crop(info["box"]).getchannel("A").getextrema() == (255, 255)


def test_a_palette_picture_with_transparency_keeps_its_clear_background() -> None:
    sticker = Image.new("RGBA", (300, 200), (0, 0, 0, 0))
    sticker.paste((200, 30, 30, 255), (50, 50, 250, 150))
    palette = sticker.quantize(16, method=Image.Quantize.FASTOCTREE)
    out, info = render_band(palette, WarningStyle(tile=False))
    assert out.mode == "P" and out.convert("RGBA").getpixel((5, 5))[3] == 0
    assert band_present(reencode(out, "PNG"), info)


# ------------------------------------------------------------------------------------------- fingerprint


@pytest.mark.parametrize("contrast", ["dark", "light", "high"])
def test_the_band_is_found_after_jpeg_at_quality_75_and_70(contrast: str) -> None:
    out, info = render_band(photo(1024, 768), WarningStyle(contrast=contrast))
    assert band_present(reencode(out, "JPEG", quality=75), info)
    assert band_present(reencode(out, "JPEG", quality=70), info)


def test_the_band_is_found_after_png_to_jpeg_and_back_and_in_a_scaled_copy() -> None:
    rgba = _in_mode("RGBA")
    out, info = render_band(rgba, WarningStyle(position="top"))
    png = reencode(out, "PNG")
    jpeg = reencode(png.convert("RGB"), "JPEG", quality=80)
    assert band_present(jpeg, info) and band_present(reencode(jpeg, "PNG"), info)
    big, big_info = render_band(photo(1200, 900), WarningStyle())
    assert band_present(reencode(big.resize((600, 450), Image.Resampling.LANCZOS), "JPEG", quality=85), big_info)


@pytest.mark.parametrize("contrast", ["dark", "light", "high"])
def test_a_band_painted_over_with_the_surrounding_colour_is_gone(contrast: str) -> None:
    out, info = render_band(photo(800, 600), WarningStyle(contrast=contrast))
    x0, y0, x1, y1 = info["box"]
    above = out.crop((0, y0 - 3, 800, y0 - 1)).resize((1, 1), Image.Resampling.BOX).getpixel((0, 0))
    painted = out.copy()
    ImageDraw.Draw(painted).rectangle((x0, y0, x1 - 1, y1 - 1), fill=above)
    assert not band_present(painted, info)
    assert not band_present(reencode(painted, "JPEG", quality=90), info)


@pytest.mark.parametrize("size", [(800, 600), (3000, 400)])  # stacked lines; one line across a third of a banner
def test_a_band_whose_words_are_painted_out_is_gone_even_if_its_field_and_rules_stay(size: tuple[int, int]) -> None:
    out, info = render_band(photo(*size), WarningStyle())
    x0, y0, x1, y1 = info["box"]
    rule = (y1 - y0) // 24 + 1
    words_out = out.copy()
    ImageDraw.Draw(words_out).rectangle((x0, y0 + rule, x1 - 1, y1 - 1 - rule), fill=BAND_COLOURS["dark"][0])
    assert band_present(out, info) and not band_present(words_out, info)


def test_a_band_replaced_by_the_underlying_photo_is_gone() -> None:
    original = photo(800, 600)
    out, info = render_band(original, WarningStyle(tile=False))
    restored = out.copy()
    restored.paste(original.crop(info["box"]), info["box"][:2])
    assert not band_present(restored, info)


def test_a_crop_that_cuts_the_band_off_or_another_picture_has_no_band() -> None:
    out, info = render_band(photo(800, 600), WarningStyle(position="bottom"))
    assert not band_present(out.crop((0, 0, 800, 450)), info)
    assert not band_present(out.crop((100, 0, 700, 560)), info)
    assert not band_present(photo(800, 600, seed=2), info)
    other, _ = render_band(photo(800, 600, seed=2), WarningStyle(position="top"))
    assert not band_present(other, info)
    # a crop that keeps the band where it was (from the right) still shows it
    assert band_present(out.crop((0, 0, 800, 600)), info)


def test_a_malformed_warning_record_is_an_error_not_a_verdict() -> None:
    with pytest.raises(InvalidInput) as err:
        band_present(photo(), {"kind": "band", "box": [0, 0, 1, 1]})
    assert err.value.field == "warning"


# ------------------------------------------------------------------------------------------- tiles


def _phrase_mask(placement) -> Image.Image:
    """The pixels the phrase covers when drawn alone with the module's font and outline."""
    x0, y0, x1, y1 = placement.box
    stroke = tile_stroke(placement.font_size)
    mask = Image.new("L", (x1 - x0 + 2 * stroke, y1 - y0 + 2 * stroke), 0)
    ImageDraw.Draw(mask).text((placement.origin[0] - x0 + stroke, placement.origin[1] - y0 + stroke), placement.text,
                              font=_font(placement.font_size), fill=255, anchor="ls", stroke_width=stroke,
                              stroke_fill=255)
    return mask


@pytest.mark.parametrize("tile", [True, False])
def test_a_centre_crop_of_half_the_picture_keeps_a_whole_warning_in_every_language(tile: bool) -> None:
    original = photo(1000, 1000, seed=5)
    out, info = render_band(original, WarningStyle(position="bottom", tile=tile))
    crop = (250, 250, 750, 750)
    assert info["box"][1] > crop[3]  # the crop cuts the band away
    cropped_out, cropped_original = out.crop(crop), original.crop(crop)
    changed = ImageChops.difference(cropped_out, cropped_original).convert("L").point(lambda v: 255 if v > 6 else 0)
    if not tile:
        assert changed.getbbox() is None  # without tiles the crop carries no warning at all
        return
    found: dict[str, int] = {}
    for placement in tile_placements(1000, 1000, WarningStyle()):
        x0, y0, x1, y1 = placement.box
        if not (x0 >= crop[0] + 3 and y0 >= crop[1] + 3 and x1 <= crop[2] - 3 and y1 <= crop[3] - 3):
            continue
        stroke = tile_stroke(placement.font_size)
        expected = _phrase_mask(placement)
        local = (x0 - stroke - crop[0], y0 - stroke - crop[1])
        seen = changed.crop((*local, local[0] + expected.width, local[1] + expected.height))
        expected = expected.point(lambda v: 255 if v > 127 else 0)
        both = ImageChops.logical_and(expected.convert("1"), seen.convert("1"))
        either = ImageChops.logical_or(expected.convert("1"), seen.convert("1"))
        overlap = both.convert("L").histogram()[255] / max(1, either.convert("L").histogram()[255])
        found[placement.language] = max(found.get(placement.language, 0), round(overlap * 100))
    # each language's whole phrase is drawn inside the crop, pixel for pixel where its letters are
    assert set(found) == {"kk", "ru", "en"} and min(found.values()) >= 60, found


def test_tiles_are_faint_the_picture_stays_visible_under_them() -> None:
    grey = Image.new("RGB", (600, 600), (128, 128, 128))
    out, info = render_band(grey, WarningStyle(position="top"))
    above_band = out.crop((0, info["box"][3], 600, 600))
    lightest = max(max(channel) for channel in above_band.getextrema())
    darkest = min(min(channel) for channel in above_band.getextrema())
    assert lightest < 255 and darkest > 0  # never opaque: alpha-blended over the picture


def test_render_band_costs_well_under_a_png_encode_of_the_picture() -> None:
    picture = photo(1000, 1000, seed=7)
    render_times, png_times = [], []
    for _ in range(3):
        started = time.perf_counter()
        out, _ = render_band(picture, WarningStyle())
        render_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        out.save(io.BytesIO(), "PNG")
        png_times.append(time.perf_counter() - started)
    assert min(render_times) < min(png_times) / 2, (render_times, png_times)


# ------------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(("style", "field"), [
    (WarningStyle(position="left"), "position"),  # type: ignore[arg-type]
    (WarningStyle(contrast="neon"), "contrast"),  # type: ignore[arg-type]
    (WarningStyle(tile="yes"), "tile"),  # type: ignore[arg-type]
    (WarningStyle(languages=()), "languages"),
    (WarningStyle(languages=("kk", "kk")), "languages"),
    (WarningStyle(languages=("de",)), "languages"),
    (WarningStyle(languages="kk"), "languages"),  # type: ignore[arg-type]
    (WarningStyle(texts={"kk": "   "}), "texts.kk"),
    (WarningStyle(texts={"ru": "И" * 121}), "texts.ru"),
    (WarningStyle(texts={"en": "AI\u202egenerated"}), "texts.en"),
    (WarningStyle(texts={"en": "AI\ngenerated"}), "texts.en"),
    (WarningStyle(texts={"de": "KI"}), "texts"),
])
def test_a_bad_style_names_its_field(style: WarningStyle, field: str) -> None:
    with pytest.raises(InvalidInput) as err:
        style.validate()
    assert err.value.field == field
    with pytest.raises(InvalidInput):
        render_band(photo(64, 64), style)


def test_a_custom_text_of_120_characters_is_fine() -> None:
    WarningStyle(texts={"en": "A" * 120}).validate()


def test_something_that_is_not_a_picture_is_refused() -> None:
    with pytest.raises(InvalidInput) as err:
        render_band(b"\x89PNG", WarningStyle())  # type: ignore[arg-type]
    assert err.value.field == "file"


# ------------------------------------------------------------------------------------------- PDF


def _pdf(pages: list[tuple[int, int]]) -> bytes:
    """A multi-page PDF made by Pillow (one picture a page, sizes in points at 72 dpi)."""
    images = [photo(w, h, seed=i + 1) for i, (w, h) in enumerate(pages)]
    out = io.BytesIO()
    images[0].save(out, "PDF", save_all=True, append_images=images[1:], resolution=72.0)
    return out.getvalue()


def _band_images(page) -> list[Image.Image]:
    return [image.image for image in page.images if image.image.width > 2 * image.image.height]


def test_every_pdf_page_gets_the_band_over_its_content() -> None:
    original = _pdf([(595, 842), (842, 595), (300, 400)])
    stamped, info = stamp_pdf(original, WarningStyle())
    assert info == {"kind": "pdf-band", "pages": 3, "position": "bottom", "languages": ["kk", "ru", "en"]}
    before, after = PdfReader(io.BytesIO(original)), PdfReader(io.BytesIO(stamped))
    assert len(after.pages) == len(before.pages) == 3
    for page_before, page_after in zip(before.pages, after.pages):
        assert len(page_after.images) == len(page_before.images) + 1  # the band's XObject is new
        bands = _band_images(page_after)
        assert len(bands) == 1
        band = bands[0].convert("RGB")
        x0, y0, x1, y1 = _placed_band(page_after)
        assert (round(x0), round(y0), round(x1)) == (0, 0, round(float(page_after.mediabox.width)))
        assert abs(band.width / band.height - (x1 - x0) / (y1 - y0)) < 0.05  # undistorted
        assert sorted(band.getcolors(band.width * band.height), reverse=True)[0][1][0] < 40  # the dark field
        content = page_after.get_contents().get_data()
        assert b" Do" in content


def _placed_band(page) -> tuple[float, float, float, float]:
    """Where the band lands in the page's user space: the `cm` chain in front of the band's Do, applied to the
    unit square (Pillow's band page draws its image with `w 0 0 h 0 0 cm`)."""
    import re

    data = page.get_contents().get_data().decode("latin-1")
    numbers = r"([-\d.]+) ([-\d.]+) ([-\d.]+) ([-\d.]+) ([-\d.]+) ([-\d.]+) cm"
    outer = [m for m in re.finditer(numbers, data)]
    # merge_transformed_page writes the transformation first, then the band page's own content
    placement, inner = outer[-2], outer[-1]
    m1 = [float(v) for v in inner.groups()]
    m2 = [float(v) for v in placement.groups()]

    def apply(m, x, y):
        return m[0] * x + m[2] * y + m[4], m[1] * x + m[3] * y + m[5]

    corners = [apply(m2, *apply(m1, x, y)) for x, y in ((0, 0), (1, 0), (0, 1), (1, 1))]
    xs, ys = [c[0] for c in corners], [c[1] for c in corners]
    return min(xs), min(ys), max(xs), max(ys)


# /Rotate turns the page clockwise for display; the reader's bottom edge is then this edge of the crop box
READER_BOTTOM = {0: "bottom", 90: "right", 180: "top", 270: "left"}
OPPOSITE = {"bottom": "top", "top": "bottom", "left": "right", "right": "left"}


@pytest.mark.parametrize("rotation", [0, 90, 180, 270])
@pytest.mark.parametrize("position", ["bottom", "top"])
def test_the_band_sits_where_the_reader_sees_it_on_a_rotated_cropped_page(rotation: int, position: str) -> None:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(_pdf([(595, 842)]))))
    page = writer.pages[0]
    page.cropbox = page.cropbox.__class__((40, 60, 540, 800))  # a visible area of 500 × 740 inside the media box
    if rotation:
        page.rotate(rotation)
    source = io.BytesIO()
    writer.write(source)
    stamped, _ = stamp_pdf(source.getvalue(), WarningStyle(position=position))
    x0, y0, x1, y1 = _placed_band(PdfReader(io.BytesIO(stamped)).pages[0])
    edge = READER_BOTTOM[rotation] if position == "bottom" else OPPOSITE[READER_BOTTOM[rotation]]
    if edge in ("bottom", "top"):
        assert (round(x0), round(x1)) == (40, 540) and 10 < y1 - y0 < 100  # across the visible width
        assert round(y0) == 60 if edge == "bottom" else round(y1) == 800
    else:
        assert (round(y0), round(y1)) == (60, 800) and 10 < x1 - x0 < 100
        assert round(x0) == 40 if edge == "left" else round(x1) == 540


def test_a_corrupt_or_encrypted_pdf_is_refused_naming_the_file() -> None:
    with pytest.raises(InvalidInput) as err:
        stamp_pdf(b"%PDF-1.7\n garbage", WarningStyle())
    assert err.value.field == "file"
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(_pdf([(200, 200)]))))
    writer.encrypt("secret")
    locked = io.BytesIO()
    writer.write(locked)
    with pytest.raises(InvalidInput) as err:
        stamp_pdf(locked.getvalue(), WarningStyle())
    assert err.value.field == "file" and "encrypted" in err.value.message
    with pytest.raises(InvalidInput) as err:
        stamp_pdf(_pdf([(200, 200)]), WarningStyle(position="side"))  # type: ignore[arg-type]
    assert err.value.field == "position"


# ------------------------------------------------------------------------------------------- Word


def _docx(*, table_first: bool = False) -> bytes:
    document = docx.Document()
    if table_first:
        document.add_table(rows=1, cols=2).cell(0, 0).text = "Quarterly figures"
    document.add_heading("Product description", level=1)
    document.add_paragraph("A generated description of the product.")
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def test_a_word_document_opens_with_the_bold_notice() -> None:
    labeled, info = notice_docx(_docx(), WarningStyle())
    assert info == {"kind": "docx-notice", "languages": ["kk", "ru", "en"]}
    document = docx.Document(io.BytesIO(labeled))
    first = document.paragraphs[0]
    for language in ("kk", "ru", "en"):
        assert WARNING_TEXTS[language] in first.text
    assert all(run.bold for run in first.runs if run.text)
    rest = [p.text for p in document.paragraphs[1:]]
    assert rest == ["Product description", "A generated description of the product."]


def test_the_notice_comes_before_a_leading_table_and_in_the_chosen_language() -> None:
    labeled, _ = notice_docx(_docx(table_first=True), WarningStyle(languages=("en",), texts={"en": "Made with AI"}))
    document = docx.Document(io.BytesIO(labeled))
    body = list(document.element.body.iterchildren())
    assert body[0].tag.endswith("}p") and "Made with AI" in document.paragraphs[0].text
    assert WARNING_TEXTS["kk"] not in document.paragraphs[0].text


def test_a_file_that_is_not_a_word_document_is_refused_naming_the_file() -> None:
    with pytest.raises(InvalidInput) as err:
        notice_docx(b"PK\x03\x04 not really a zip", WarningStyle())
    assert err.value.field == "file"


def test_the_labeled_word_document_is_a_stored_zip_that_c2pa_can_read() -> None:
    import zipfile

    labeled, _ = notice_docx(_docx(), WarningStyle())
    with zipfile.ZipFile(io.BytesIO(labeled)) as package:
        assert package.testzip() is None
        assert {m.compress_type for m in package.infolist()} == {zipfile.ZIP_STORED}
        assert "word/document.xml" in package.namelist()
    import c2pa
    from qorgau.provenance import ca

    credential = ca.issue_operator(ca.new_root(), operator_name="Alpha Market LLP", bin="123456789012")
    algorithm = getattr(c2pa.C2paSigningAlg, credential.algorithm.upper())
    media_type = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    manifest = {"claim_generator_info": [{"name": "qorgau-test", "version": "1"}], "title": "notice",
                "format": media_type,
                "assertions": [{"label": "c2pa.actions", "data": {"actions": [
                    {"action": "c2pa.created", "digitalSourceType": TRAINED}]}}]}

    def sign(package: bytes) -> bytes:
        info = c2pa.C2paSignerInfo(algorithm, credential.chain_pem(), credential.key_pem(), None)
        signer = c2pa.Signer.from_info(info)
        with signer, c2pa.Builder(manifest) as builder:
            out = io.BytesIO()
            builder.sign(signer, media_type, io.BytesIO(package), out)
            return out.getvalue()

    signed = sign(labeled)  # the real c2pa embeds its manifest in the stored package
    assert WARNING_TEXTS["kk"] in docx.Document(io.BytesIO(signed)).paragraphs[0].text
    deflated, _ = notice_docx(_docx(), WarningStyle(), stored=False)
    with pytest.raises(c2pa.C2paError, match="compression method"):  # why the notice is stored (see notice_docx)
        sign(deflated)
