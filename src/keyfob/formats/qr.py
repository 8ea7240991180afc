"""QR codes out (segno) and in (zxing-cpp): the bridge between screens and secrets.

Decoding is built for what users actually feed it: a phone-camera JPEG or a full-page
screenshot of an MFA enrolment page, with the QR code small, scaled, rotated or surrounded by
other content, sometimes several codes (a Google Authenticator export spans many). zxing-cpp
finds codes in any orientation; when its first pass finds nothing we retry on an upscaled copy
(tiny codes in large screenshots) and with a global binarizer (low-contrast screenshots).
"""

from __future__ import annotations

import io
from pathlib import Path

import segno
import zxingcpp
from PIL import Image, ImageOps, UnidentifiedImageError

from keyfob.errors import QrDecodeError

ERROR_LEVEL = "m"
"""Medium error correction: survives a smudged photo, still small for long otpauth URIs."""


def _make(payload: str) -> segno.QRCode:
    return segno.make(payload, error=ERROR_LEVEL, micro=False, boost_error=False)


def encode_png(payload: str, *, scale: int = 8, border: int = 4) -> bytes:
    """A PNG of the QR code; the 4-module quiet zone is what scanners expect."""
    out = io.BytesIO()
    _make(payload).save(out, kind="png", scale=scale, border=border)
    return out.getvalue()


def encode_svg(payload: str, *, scale: int = 4, border: int = 4, title: str | None = None) -> str:
    """An SVG of the QR code, suitable for inlining in an HTML page (no XML declaration)."""
    out = io.BytesIO()
    _make(payload).save(
        out,
        kind="svg",
        scale=scale,
        border=border,
        xmldecl=False,
        omitsize=True,  # viewBox only: the page sizes it with CSS
        svgns=True,
        title=title,
        svgclass="qr",
        lineclass=None,
    )
    return out.getvalue().decode("utf-8")


# Black on bright white, set explicitly: the code reads dark-on-light (what phone cameras and
# OpenCV decode) whatever the terminal's own colours, light or dark.
TERMINAL_COLOURS = "\x1b[30;107m"
TERMINAL_RESET = "\x1b[0m"


def encode_terminal(payload: str, *, border: int = 2, colour: bool = True) -> str:
    """The QR code drawn with half-block characters, two modules per text row.

    ``colour`` (the default) sets black on white for every row, quiet zone included, so the
    code reads the same on light and dark terminals. Without it (``NO_COLOR``) dark modules are
    left as the terminal's background, which is right on a dark terminal only."""
    qr = _make(payload)
    rows = [list(row) for row in qr.matrix]
    size = len(rows)
    full = [[0] * (size + 2 * border) for _ in range(border)]
    padded = (
        full
        + [[0] * border + [int(v) for v in r] + [0] * border for r in rows]
        + [[0] * (size + 2 * border) for _ in range(border)]
    )
    if len(padded) % 2:
        padded.append([0] * (size + 2 * border))
    if colour:  # dark modules in the (black) foreground, light ones the (white) background
        glyphs = {(0, 0): " ", (0, 1): "▄", (1, 0): "▀", (1, 1): "█"}
        start, end = TERMINAL_COLOURS, TERMINAL_RESET
    else:  # dark modules as the terminal's (dark) background
        glyphs = {(0, 0): "█", (0, 1): "▀", (1, 0): "▄", (1, 1): " "}
        start = end = ""
    lines = []
    for top, bottom in zip(padded[0::2], padded[1::2], strict=True):
        cells = "".join(glyphs[(t, b)] for t, b in zip(top, bottom, strict=True))
        lines.append(start + cells + end)
    return "\n".join(lines) + "\n"


def write_file(payload: str, path: Path) -> None:
    """Write PNG or SVG according to the file's suffix."""
    suffix = path.suffix.lower()
    if suffix == ".png":
        path.write_bytes(encode_png(payload))
    elif suffix == ".svg":
        path.write_text(encode_svg(payload), encoding="utf-8")
    else:
        raise QrDecodeError(
            f"cannot write a QR code to {path.name!r}: unknown file type {suffix or '(none)'!r}",
            hint="name the file .png or .svg",
        )


def _open(source: Path | bytes) -> Image.Image:
    name = "image data" if isinstance(source, bytes) else str(source)
    try:
        img = Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)
        img.load()
    except FileNotFoundError:
        raise QrDecodeError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise QrDecodeError(f"{name}: is a directory, not an image") from None
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError) as exc:
        raise QrDecodeError(
            f"{name}: not a readable image ({type(exc).__name__})",
            hint="give a PNG or JPEG screenshot of the QR code",
        ) from None
    # Phone photos carry their orientation in EXIF; apply it so coordinates make sense.
    return ImageOps.exif_transpose(img).convert("L")


_QR_ONLY = zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)


def _scan(img: Image.Image, binarizer: zxingcpp.Binarizer) -> list[str]:
    return [
        r.text
        for r in zxingcpp.read_barcodes(img, formats=_QR_ONLY, binarizer=binarizer)
        if r.valid
    ]


def decode_image(source: Path | bytes) -> list[str]:
    """Every QR payload in an image, in reading order, without duplicates.

    Raises :class:`QrDecodeError` when the file is not an image or holds no QR code.
    """
    img = _open(source)
    texts = _scan(img, zxingcpp.Binarizer.LocalAverage)
    if not texts and max(img.size) < 2000:
        big = img.resize((img.width * 2, img.height * 2), Image.Resampling.NEAREST)
        texts = _scan(big, zxingcpp.Binarizer.LocalAverage)
    if not texts:
        texts = _scan(img, zxingcpp.Binarizer.GlobalHistogram)
    if not texts:
        name = "the image" if isinstance(source, bytes) else str(source)
        raise QrDecodeError(
            f"no QR code found in {name}",
            hint="crop the screenshot closer to the code, or make sure the whole code is visible",
        )
    return list(dict.fromkeys(texts))
