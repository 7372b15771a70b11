"""The perceivable warnings for sound and video (L-AI-LABEL): a spoken notice before WAV audio, a band burned into
every frame of a video. Real files throughout: WAVs written by the stdlib, H.264/AAC MP4s encoded by PyAV, the
band drawn by the real ``overlay.render_band`` and checked with ``overlay.band_present``."""

from __future__ import annotations

import io
import struct
import wave
from fractions import Fraction

import av
import numpy as np
import pytest
from PIL import Image, ImageOps

from qorgau.core.errors import InvalidInput
from qorgau.provenance import media as labels_media
from qorgau.provenance.media import NOTICE_SPEECH, audible_notice_wav, burn_video, wav_comment
from qorgau.provenance.overlay import WarningStyle, band_present, render_band
from tests.provenance import media_fixtures as media

# ----------------------------------------------------------------------------------------------------- WAV


def read_frames(data: bytes) -> tuple[wave._wave_params, np.ndarray]:
    """Decode a PCM WAV with the stdlib reader into an int array of shape (frames, channels)."""
    with wave.open(io.BytesIO(data), "rb") as w:
        params = w.getparams()
        raw = w.readframes(w.getnframes())
    width, channels = params.sampwidth, params.nchannels
    if width == 1:
        values = np.frombuffer(raw, np.uint8).astype(np.int64) - 128
    elif width == 3:
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int64)
        values = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        values = np.where(values >= 1 << 23, values - (1 << 24), values)
    else:
        values = np.frombuffer(raw, {2: "<i2", 4: "<i4"}[width]).astype(np.int64)
    return params, values.reshape(-1, channels)


@pytest.mark.parametrize(("width", "channels", "rate"), [
    (1, 1, 16000), (2, 1, 16000), (3, 1, 16000), (4, 1, 16000), (2, 2, 44100), (3, 2, 48000), (2, 1, 8000),
])
def test_a_wav_starts_with_the_spoken_notice_and_keeps_every_original_sample(width, channels, rate):
    original = media.wav(seconds=0.5, rate=rate, channels=channels, width=width)
    labeled, info = audible_notice_wav(original, ("kk", "ru", "en"))

    before, source = read_frames(original)
    after, result = read_frames(labeled)
    assert (after.sampwidth, after.nchannels, after.framerate) == (width, channels, rate)
    assert info["kind"] == "audible" and info["languages"] == ["kk", "ru", "en"]
    notice_frames = after.nframes - before.nframes
    assert abs(notice_frames / rate - info["seconds"]) < 0.001
    assert 6.0 < info["seconds"] < 12.0  # three sentences and three pauses
    assert np.array_equal(result[notice_frames:], source)  # the original follows, untouched
    spoken = result[:notice_frames].astype(float)
    full_scale = 2 ** (8 * width - 1)
    assert np.sqrt(np.mean(spoken ** 2)) > 0.02 * full_scale  # the notice is audible, not silence
    assert np.array_equal(result[:notice_frames, 0], result[:notice_frames, -1])  # same notice on every channel
    pause = result[notice_frames - int(0.3 * rate) + 1:notice_frames]
    assert np.abs(pause).max() <= 1  # 0.3 s of silence before the content


def test_the_notice_plays_the_chosen_languages_in_order():
    original = media.wav()
    english, en_info = audible_notice_wav(original, ("en",))
    both, both_info = audible_notice_wav(original, ("en", "ru"))
    reversed_, _ = audible_notice_wav(original, ("ru", "en"))
    _, en_frames = read_frames(english)
    _, both_frames = read_frames(both)
    _, reversed_frames = read_frames(reversed_)
    en_notice = len(en_frames) - 8000
    assert np.array_equal(both_frames[:en_notice], en_frames[:en_notice])  # English first, as chosen
    assert not np.array_equal(reversed_frames[:en_notice], en_frames[:en_notice])
    assert both_info["seconds"] > en_info["seconds"] + 1.0


def test_the_notice_text_is_also_a_riff_comment_and_existing_tags_stay():
    original = with_info_tags(media.wav(), {b"INAM": "Жаңа жарнама", b"ICMT": "old comment"})
    labeled, _ = audible_notice_wav(original, ("kk", "en"))
    comment = wav_comment(labeled)
    assert comment is not None
    assert NOTICE_SPEECH["kk"] in comment and NOTICE_SPEECH["en"] in comment
    assert NOTICE_SPEECH["ru"] not in comment
    assert "Жаңа жарнама".encode() in labeled  # the title tag is kept
    assert b"old comment" not in labeled  # replaced by the notice, not listed twice
    assert wav_comment(media.wav()) is None


def with_info_tags(data: bytes, tags: dict[bytes, str]) -> bytes:
    entries = b"".join(chunk(key, value.encode() + b"\x00") for key, value in tags.items())
    body = data[12:] + chunk(b"LIST", b"INFO" + entries)
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WAVE" + body


def chunk(ident: bytes, payload: bytes) -> bytes:
    return ident + struct.pack("<I", len(payload)) + payload + (b"\x00" if len(payload) % 2 else b"")


def float_wav(samples: np.ndarray, rate: int = 22050, *, extensible: bool = False) -> bytes:
    channels = samples.shape[1]
    if extensible:
        guid_tail = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
        fmt = struct.pack("<HHIIHHHHI", 0xFFFE, channels, rate, rate * 4 * channels, 4 * channels, 32, 22, 32,
                          (1 << channels) - 1) + struct.pack("<H", 3) + guid_tail
    else:
        fmt = struct.pack("<HHIIHHH", 3, channels, rate, rate * 4 * channels, 4 * channels, 32, 0)
    body = chunk(b"fmt ", fmt) + chunk(b"fact", struct.pack("<I", len(samples))) + chunk(
        b"data", samples.astype("<f4").tobytes())
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WAVE" + body


@pytest.mark.parametrize("extensible", [False, True])
def test_a_float_wav_keeps_its_format_and_samples(extensible):
    samples = media.tone(0.25, 22050, 2).astype(np.float32)
    labeled, info = audible_notice_wav(float_wav(samples, extensible=extensible), ("ru",))
    parsed = labels_media._parse_wav(labeled)
    assert parsed.float_samples and (parsed.channels, parsed.rate, parsed.width) == (2, 22050, 4)
    decoded = np.frombuffer(parsed.data, "<f4").reshape(-1, 2)
    notice = len(decoded) - len(samples)
    assert abs(notice / 22050 - info["seconds"]) < 0.001
    assert np.array_equal(decoded[notice:], samples)
    assert np.abs(decoded[:notice]).max() > 0.3
    fact = labeled[labeled.index(b"fact") + 8:labeled.index(b"fact") + 12]
    assert struct.unpack("<I", fact)[0] == len(decoded)


@pytest.mark.parametrize("corrupt", [
    b"",
    b"RIFF\x10\x00\x00\x00WAVEjunkjunkjunk",                       # no fmt/data chunks
    media.wav()[:30],                                              # cut inside the format chunk
    media.wav().replace(b"fmt ", b"fmx "),                         # no format chunk
    media.wav()[:20] + b"\x55\x00" + media.wav()[22:],             # an unknown codec (0x55 = MP3 in WAV)
    media.png(),
], ids=["empty", "no-chunks", "truncated-header", "no-fmt", "mp3-in-wav", "png"])
def test_a_corrupt_wav_is_refused_naming_the_file_field(corrupt):
    with pytest.raises(InvalidInput) as caught:
        audible_notice_wav(corrupt, ("en",))
    assert caught.value.field == "file"


@pytest.mark.parametrize("languages", [(), ("de",), ("en", "en")])
def test_unknown_or_repeated_languages_are_refused_naming_the_field(languages):
    with pytest.raises(InvalidInput) as caught:
        audible_notice_wav(media.wav(), languages)
    assert caught.value.field == "languages"


def test_the_shipped_clips_are_small_mono_16_bit_16_khz():
    for language in ("kk", "ru", "en"):
        path = labels_media.NOTICES_DIR / f"{language}.wav"
        with wave.open(str(path), "rb") as w:
            assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 16000)
            assert 1.5 < w.getnframes() / 16000 < 5.0
        assert path.stat().st_size < 120_000


# --------------------------------------------------------------------------------------------------- video


def decode(data: bytes) -> tuple[list, dict]:
    """All decoded video frames as PIL images, and facts about the container's streams."""
    with av.open(io.BytesIO(data)) as box:
        video = box.streams.video[0]
        facts = {
            "audio": [s.codec_context.name for s in box.streams.audio],
            "video_codec": video.codec_context.name,
            "time_base": video.time_base,
            "fps": video.average_rate,
            "format": box.format.name,
        }
        frames = list(box.decode(video))
    facts["frames"] = len(frames)
    facts["seconds"] = float(frames[-1].time - frames[0].time) + float(1 / facts["fps"])
    return [frame.to_image() for frame in frames], facts


def test_every_frame_of_a_video_carries_the_band_and_the_timing_and_sound_survive():
    source = media.mp4(seconds=2.5, w=160, h=120, fps=24, audio=True)
    labeled, info = burn_video(source, WarningStyle())

    source_frames, before = decode(source)
    frames, after = decode(labeled)
    assert info["kind"] == "video-band" and info["frames"] == 60 == after["frames"] == before["frames"]
    assert info["position"] == "bottom" and list(info["languages"]) == ["kk", "ru", "en"]
    assert info["frame"]["kind"] == "band" and info["box"] == info["frame"]["box"]
    assert abs(after["seconds"] - before["seconds"]) <= 1 / 24 + 1e-6
    assert abs(info["seconds"] - 2.5) <= 1 / 24 + 1e-6
    assert after["video_codec"] == "h264" and after["audio"] == ["aac"]
    assert frames[0].size == (160, 120)
    assert not band_present(source_frames[0], info["frame"])
    assert all(band_present(frame, info["frame"]) for frame in frames)


def test_the_sound_of_a_video_keeps_its_length():
    labeled, _ = burn_video(media.mp4(seconds=1, audio=True), WarningStyle())
    with av.open(io.BytesIO(labeled)) as box:
        samples = sum(frame.samples for frame in box.decode(audio=0))
    assert 16000 - 1024 <= samples <= 16000 + 1024  # one AAC frame of slack


def test_frames_between_the_checks_match_what_render_band_draws():
    """The painter blends a pre-rendered band into most frames; the result is render_band's own picture."""
    picture = np.asarray(media.picture(320, 180, seed=7))
    painter = labels_media._BandPainter(render_band, WarningStyle(), (320, 180))
    painter.paint(np.asarray(media.picture(320, 180)), 0)
    blended = painter.paint(picture, 1)
    reference = np.asarray(render_band(Image.fromarray(picture), WarningStyle())[0])
    assert np.abs(blended.astype(int) - reference).max() <= 2


def test_an_overlay_that_depends_on_the_picture_is_drawn_by_render_band_on_every_frame():
    def inverting_band(image: Image.Image, style: WarningStyle) -> tuple[Image.Image, dict]:
        out, info = render_band(image, style)
        return ImageOps.invert(out), info  # not a blend: the pre-rendered band can't reproduce it

    painter = labels_media._BandPainter(inverting_band, WarningStyle(), (160, 120))
    first = np.asarray(media.picture(160, 120))
    painter.paint(first, 0)
    later = np.asarray(media.picture(160, 120, seed=3))
    expected = np.asarray(inverting_band(Image.fromarray(later), WarningStyle())[0])
    assert np.array_equal(painter.paint(later, 1), expected)


def test_a_mov_without_sound_becomes_an_mp4_with_the_band():
    source = media.mp4(seconds=0.5, fps=12, audio=False, container="mov")
    assert source[8:12] == b"qt  "
    labeled, info = burn_video(source, WarningStyle(position="top"))
    frames, facts = decode(labeled)
    assert labeled[8:12] != b"qt  " and facts["audio"] == []
    assert facts["frames"] == info["frames"] == 6
    assert info["box"][1] == 0  # top
    assert band_present(frames[-1], info["frame"])


def test_a_phone_video_recorded_sideways_gets_the_band_where_the_viewer_sees_the_bottom():
    source = media.mp4(seconds=0.3, w=160, h=96, fps=10, audio=False, rotation=90)
    labeled, info = burn_video(source, WarningStyle())
    frames, _ = decode(labeled)
    assert frames[0].size == (96, 160)  # written upright
    with av.open(io.BytesIO(labeled)) as box:
        assert next(box.decode(video=0)).rotation == 0
    assert info["box"][3] == 160 and band_present(frames[0], info["frame"])
    # the fixture's red grows left to right; turned a quarter counter-clockwise, the right edge is on top
    red = np.asarray(frames[0])[:, :, 0].astype(float)
    assert red[:20].mean() > red[100:120].mean() + 20


def test_a_picture_too_large_or_too_small_for_a_band_is_refused(monkeypatch):
    monkeypatch.setattr(labels_media, "MAX_PIXELS", 100 * 100)
    with pytest.raises(InvalidInput) as too_large:
        burn_video(media.mp4(seconds=0.2, w=160, h=120, audio=False), WarningStyle())
    monkeypatch.undo()
    with pytest.raises(InvalidInput) as too_small:
        burn_video(media.mp4(seconds=0.2, w=8, h=8, audio=False), WarningStyle())
    assert too_large.value.field == too_small.value.field == "file"


def test_a_video_longer_than_the_limit_is_refused():
    with pytest.raises(InvalidInput) as caught:
        burn_video(media.mp4(seconds=1, audio=False), WarningStyle(), max_seconds=0.5)
    assert caught.value.field == "file"


@pytest.mark.parametrize("not_a_video", [
    b"",
    b"\x00\x00\x00\x20ftypisom" + bytes(200),
    media.png(),
    media.wav(),
    media.mp4(video=False),
    media.mp4()[:600],
], ids=["empty", "ftyp-then-zeros", "png", "wav", "sound-only-mp4", "truncated"])
def test_a_file_that_is_not_a_video_is_refused_naming_the_file_field(not_a_video):
    with pytest.raises(InvalidInput) as caught:
        burn_video(not_a_video, WarningStyle())
    assert caught.value.field == "file"


def test_a_bad_style_is_refused_before_any_decoding():
    with pytest.raises(InvalidInput) as caught:
        burn_video(b"not even a video", WarningStyle(position="sideways"))  # type: ignore[arg-type]
    assert caught.value.field == "position"


def tagged_video(colorspace: int, color_range: int) -> tuple[bytes, np.ndarray]:
    """Three frames of red, green and blue stripes, converted and tagged with the given YUV matrix and range."""
    out = io.BytesIO()
    stripes = np.zeros((120, 160, 3), np.uint8)
    stripes[:, :50], stripes[:, 50:100], stripes[:, 100:] = (230, 20, 20), (20, 200, 40), (30, 40, 220)
    with av.open(out, "w", format="mp4") as box:
        stream = box.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        stream.codec_context.colorspace, stream.codec_context.color_range = colorspace, color_range
        for i in range(3):
            frame = av.VideoFrame.from_ndarray(stripes, format="rgb24").reformat(
                format="yuv420p", dst_colorspace=colorspace, dst_color_range=color_range)
            frame.pts, frame.time_base = i, Fraction(1, 10)
            box.mux(stream.encode(frame))
        box.mux(stream.encode())
    return out.getvalue(), stripes


@pytest.mark.parametrize(("colorspace", "color_range"), [(1, 1), (1, 2), (5, 1)], ids=["bt709", "bt709-full", "bt601"])
def test_colours_and_colour_tags_survive_the_band(colorspace, color_range):
    source, stripes = tagged_video(colorspace, color_range)
    labeled, _ = burn_video(source, WarningStyle(tile=False))
    with av.open(io.BytesIO(labeled)) as box:
        frame = next(box.decode(video=0))
        assert (int(frame.colorspace), int(frame.color_range)) == (colorspace, color_range)
        rgb = frame.reformat(format="rgb24", src_colorspace=colorspace, src_color_range=color_range).to_ndarray()
    assert np.abs(rgb[:60].astype(int) - stripes[:60]).mean() < 5  # above the band: the picture as it was
