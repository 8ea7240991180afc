"""QR codes: segno out, zxing-cpp in, checked against images drawn by another library."""

from __future__ import annotations

import io
import random

import pytest
import qrcode
from PIL import Image, ImageDraw, ImageFilter

from keyfob.errors import QrDecodeError
from keyfob.formats import qr

URI = (
    "otpauth://totp/ACME%20Co:john.doe@email.com?secret=HXDMVJECJJWSRB3HWIZR4IFUGFTMXBOZ"
    "&issuer=ACME%20Co&algorithm=SHA1&digits=6&period=30"
)


def _qrcode_image(payload: str, box: int = 6) -> Image.Image:
    """An image drawn by python-qrcode, not by segno: an independent encoder."""
    code = qrcode.QRCode(box_size=box, border=4, error_correction=qrcode.constants.ERROR_CORRECT_M)
    code.add_data(payload)
    return code.make_image(fill_color="black", back_color="white").get_image().convert("RGB")


def _png(img: Image.Image, fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    img.save(out, format=fmt, quality=85)
    return out.getvalue()


def test_decodes_a_code_drawn_by_another_library() -> None:
    assert qr.decode_image(_png(_qrcode_image(URI))) == [URI]


def test_segno_png_round_trip(tmp_path) -> None:
    path = tmp_path / "code.png"
    qr.write_file(URI, path)
    assert qr.decode_image(path) == [URI]


def test_svg_is_inline_ready() -> None:
    svg = qr.encode_svg(URI, title="QR code")
    assert svg.startswith("<svg") and "<?xml" not in svg and "<title>QR code</title>" in svg


def test_terminal_drawing_is_square_and_decodes() -> None:
    text = qr.encode_terminal(URI, colour=False)  # NO_COLOR: dark modules = dark background
    rows = text.splitlines()
    assert len({len(r) for r in rows}) == 1
    # Re-rasterise the half blocks (dark = space) and decode them again.
    width, scale = len(rows[0]), 4
    img = Image.new("L", (width * scale, len(rows) * 2 * scale), 255)
    draw = ImageDraw.Draw(img)
    for y, row in enumerate(rows):
        for x, ch in enumerate(row):
            top_dark = ch in (" ", "▄")
            bottom_dark = ch in (" ", "▀")
            if top_dark:
                draw.rectangle(
                    [x * scale, 2 * y * scale, (x + 1) * scale - 1, (2 * y + 1) * scale - 1], 0
                )
            if bottom_dark:
                draw.rectangle(
                    [x * scale, (2 * y + 1) * scale, (x + 1) * scale - 1, (2 * y + 2) * scale - 1],
                    0,
                )
    assert qr.decode_image(_png(img)) == [URI]


def _screenshot(codes: list[Image.Image], seed: int = 7) -> Image.Image:
    """A noisy 'page': gradient, random text-like blocks, then the codes pasted in."""
    rng = random.Random(seed)
    page = Image.new("RGB", (1600, 1000), (245, 245, 250))
    draw = ImageDraw.Draw(page)
    for _ in range(400):
        x, y = rng.randrange(1600), rng.randrange(1000)
        shade = rng.randrange(60, 200)
        draw.rectangle(
            [x, y, x + rng.randrange(5, 80), y + rng.randrange(3, 12)], fill=(shade,) * 3
        )
    for i, code in enumerate(codes):
        page.paste(code, (150 + i * 700, 250))
    return page


def test_synthetic_screenshot_scaled_rotated_and_noisy() -> None:
    code = _qrcode_image(URI, box=8)
    code = code.resize((int(code.width * 0.7), int(code.height * 0.7)), Image.Resampling.BILINEAR)
    code = code.rotate(
        17, expand=True, fillcolor=(255, 255, 255), resample=Image.Resampling.BICUBIC
    )
    page = _screenshot([code]).filter(ImageFilter.GaussianBlur(0.6))
    assert qr.decode_image(_png(page, "JPEG")) == [URI]


def test_several_codes_in_one_image() -> None:
    other = "otpauth://totp/Other:bob?secret=JBSWY3DPEHPK3PXP&issuer=Other"
    page = _screenshot([_qrcode_image(URI), _qrcode_image(other)])
    assert sorted(qr.decode_image(_png(page))) == sorted([URI, other])


def test_small_code_in_a_large_screenshot() -> None:
    code = _qrcode_image(URI, box=2)
    page = Image.new("RGB", (1920, 1080), "white")
    page.paste(code, (1500, 800))
    assert qr.decode_image(_png(page)) == [URI]


def test_image_without_qr_code_is_a_clear_error() -> None:
    page = _screenshot([])
    with pytest.raises(QrDecodeError, match="no QR code found in the image"):
        qr.decode_image(_png(page))


def test_not_an_image(tmp_path) -> None:
    fake = tmp_path / "text_masquerading_as_image.jpeg"
    fake.write_text("Lorem ipsum")
    with pytest.raises(QrDecodeError, match="not a readable image"):
        qr.decode_image(fake)
    with pytest.raises(QrDecodeError, match="no such file"):
        qr.decode_image(tmp_path / "missing.png")


def test_unknown_output_type(tmp_path) -> None:
    with pytest.raises(QrDecodeError, match=r"name the file \.png or \.svg"):
        qr.write_file(URI, tmp_path / "code.gif")


def _render_terminal(text: str, default_fg: int, default_bg: int) -> Image.Image:
    """What a terminal with these default colours (0 black, 255 white) shows of ``text``:
    inside ``TERMINAL_COLOURS`` black on white, elsewhere its own colours."""
    rows, scale = text.splitlines(), 4
    cells: list[list[tuple[str, int, int]]] = []
    for row in rows:
        line, fg, bg, i = [], default_fg, default_bg, 0
        while i < len(row):
            if row.startswith(qr.TERMINAL_COLOURS, i):
                fg, bg, i = 0, 255, i + len(qr.TERMINAL_COLOURS)
            elif row.startswith(qr.TERMINAL_RESET, i):
                fg, bg, i = default_fg, default_bg, i + len(qr.TERMINAL_RESET)
            else:
                line.append((row[i], fg, bg))
                i += 1
        cells.append(line)
    width = max(len(line) for line in cells) + 4  # the terminal's own margin around it
    img = Image.new("L", (width * scale, (len(cells) + 2) * 2 * scale), default_bg)
    draw = ImageDraw.Draw(img)
    for y, line in enumerate(cells, start=1):
        for x, (ch, fg, bg) in enumerate(line, start=2):
            top = fg if ch in ("█", "▀") else bg
            bottom = fg if ch in ("█", "▄") else bg
            left, right = x * scale, (x + 1) * scale - 1
            draw.rectangle([left, 2 * y * scale, right, (2 * y + 1) * scale - 1], top)
            draw.rectangle([left, (2 * y + 1) * scale, right, (2 * y + 2) * scale - 1], bottom)
    return img


@pytest.mark.parametrize("terminal", ["light", "dark"])
def test_terminal_code_reads_on_light_and_dark_terminals(terminal: str) -> None:
    """The colour drawing is black on white on every terminal: rendered with a light and a
    dark theme, zxing-cpp reads it back, and every character sits inside the colour span."""
    text = qr.encode_terminal(URI)
    for row in text.splitlines():
        assert row.startswith(qr.TERMINAL_COLOURS) and row.endswith(qr.TERMINAL_RESET)
    fg, bg = (0, 255) if terminal == "light" else (255, 0)
    shown = _render_terminal(text, fg, bg)
    # dark on light: the quiet zone is white (zxing-cpp would read an inverted code too, but
    # phone cameras and OpenCV do not)
    assert shown.getpixel((2 * 4, 2 * 4)) == 255
    assert qr.decode_image(_png(shown)) == [URI]
    if terminal == "light":  # what the drawing without colour did on a light terminal
        plain = _render_terminal(qr.encode_terminal(URI, colour=False), fg, bg)
        assert plain.getpixel((2 * 4, 2 * 4)) == 0
