"""Image fixtures generated in code: every test builds its own bytes, nothing is read from disk.

Each generator returns ``bytes`` (cached: bytes are immutable, so sharing them is safe). Images
that tests inspect pixel by pixel use the asymmetric *oriented* picture: ``DISPLAY_SIZE`` grey,
a red square in its top-left corner and a blue square in its top-right corner, so every one of
the eight EXIF orientations leaves a different pattern when applied wrongly.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from collections.abc import Mapping
from functools import cache
from typing import Any

import numpy as np
import pillow_heif
import pyvips
from PIL import ExifTags, Image, ImageCms, TiffImagePlugin
from PIL.PngImagePlugin import PngInfo

__all__ = [
    "BLUE",
    "COMMENT",
    "DISPLAY_SIZE",
    "GPS_ALTITUDE_M",
    "GPS_LATITUDE",
    "GPS_LONGITUDE",
    "GREY",
    "HOSTILE_MAKE",
    "HOSTILE_MODEL",
    "HOSTILE_SOFTWARE",
    "MARK",
    "P3_SOURCE_SRGB",
    "RED",
    "XMP_PACKET",
    "animated_avif",
    "animated_gif",
    "animated_webp",
    "apng",
    "apng_frame",
    "avif",
    "avif_poison",
    "bigtiff",
    "bmp",
    "camera_jpeg",
    "cmyk_jpeg",
    "eps",
    "eps_binary",
    "gif",
    "gif_bomb",
    "gif_frame",
    "gif_screen_bomb",
    "gps_ifd",
    "grey16_png",
    "grey_jpeg",
    "grey_png",
    "heic",
    "hostile_jpeg",
    "html",
    "ico",
    "isobmff",
    "jpeg",
    "jpeg_bomb",
    "jpeg_garbage_after_header",
    "jpeg_with_exif",
    "jpeg_with_raw_exif",
    "noisy_jpeg",
    "noisy_png",
    "noisy_webp",
    "oriented",
    "oriented_display",
    "p3_jpeg",
    "palette_png",
    "pdf",
    "png",
    "png_bomb",
    "png_chunk",
    "png_ihdr",
    "png_latin1_keyword",
    "png_with_chunks",
    "png_with_metadata",
    "postscript",
    "psd",
    "rational",
    "raw_exif",
    "rgb16_png",
    "rgba_png",
    "salient",
    "scene",
    "svg",
    "svg_bare",
    "text",
    "tiff",
    "tiff_bad_offset",
    "tiff_header",
    "tiff_jpeg_compressed",
    "tiff_many_tags",
    "truncated",
    "webp",
    "webp_frame",
    "webp_with_metadata",
    "with_box_version",
    "yellow_fraction",
    "zip_archive",
]

DISPLAY_SIZE = (60, 40)
MARK = 16  # side of the coloured corner squares, in display pixels
GREY = (128, 128, 128)
RED = (255, 0, 0)
BLUE = (0, 0, 255)
# The sRGB colour ``p3_jpeg`` shows; its stored (P3-encoded) numbers are quite different.
P3_SOURCE_SRGB = (200, 60, 40)

# The GPS position written by ``camera_jpeg``: Sydney Opera House, south and west signs forced
# (33°51'31.56"S 151°12'3"W) so both negative branches are exercised; 123.4 m below sea level.
GPS_LATITUDE = -(33 + 51 / 60 + 31.56 / 3600)
GPS_LONGITUDE = -(151 + 12 / 60 + 3 / 3600)
GPS_ALTITUDE_M = -123.4

# What a hostile file carries; tests look for these strings in every output.
HOSTILE_MAKE = "<script>alert(1)</script>"
HOSTILE_MODEL = "EOS\x07\x1b[31m R5\x7f"
HOSTILE_SOFTWARE = "A" * 5000
XMP_PACKET = (
    b'<?xpacket begin="\xef\xbb\xbf" id="W5M0MpCehiHzreSzNTczkc9d"?>'
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
    b'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    b'<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/" dc:creator="xmp-secret"/>'
    b'</rdf:RDF></x:xmpmeta><?xpacket end="w"?>'
)
COMMENT = b"com-secret: shot at home"

_R = TiffImagePlugin.IFDRational

# Pillow transpose that *undoes* each EXIF orientation: stored = display.transpose(_UNDO[n]), so a
# viewer applying orientation n to the stored pixels shows the display picture again.
_UNDO: dict[int, Image.Transpose | None] = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


def _save(image: Image.Image, fmt: str, **params: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def _plain(size: tuple[int, int] = DISPLAY_SIZE, mode: str = "RGB") -> Image.Image:
    colour: Any = {"RGB": GREY, "L": 128}[mode]
    return Image.new(mode, size, colour)


def oriented_display(scale: int = 1) -> Image.Image:
    """The picture as a viewer must show it: grey, red top-left square, blue top-right square.

    ``scale`` multiplies every dimension (``DISPLAY_SIZE`` and ``MARK``) by a whole factor.
    """
    width, height = DISPLAY_SIZE[0] * scale, DISPLAY_SIZE[1] * scale
    mark = MARK * scale
    image = Image.new("RGB", (width, height), GREY)
    image.paste(RED, (0, 0, mark, mark))
    image.paste(BLUE, (width - mark, 0, width, mark))
    return image


@cache
def oriented(orientation: int, fmt: str = "JPEG", scale: int = 1) -> bytes:
    """``oriented_display(scale)`` stored so that EXIF ``orientation`` (1..8) restores it.

    ``fmt`` is a Pillow format name: ``JPEG``, ``PNG`` or ``WEBP`` (all three carry EXIF).
    """
    undo = _UNDO[orientation]
    display = oriented_display(scale)
    stored = display if undo is None else display.transpose(undo)
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    params: dict[str, Any] = {"exif": exif}
    if fmt == "JPEG":
        params.update(quality=95, subsampling=0)
    elif fmt == "WEBP":
        params.update(lossless=True)
    return _save(stored, fmt, **params)


@cache
def jpeg(size: tuple[int, int] = DISPLAY_SIZE) -> bytes:
    """A plain grey baseline JPEG without any metadata."""
    return _save(_plain(size), "JPEG", quality=90)


@cache
def png(size: tuple[int, int] = DISPLAY_SIZE) -> bytes:
    """A plain grey 8-bit RGB PNG."""
    return _save(_plain(size), "PNG")


@cache
def gif(size: tuple[int, int] = DISPLAY_SIZE) -> bytes:
    """A plain single-frame GIF."""
    return _save(_plain(size), "GIF")


@cache
def webp(size: tuple[int, int] = DISPLAY_SIZE) -> bytes:
    """A plain lossy WebP."""
    return _save(_plain(size), "WEBP", quality=80)


@cache
def avif(size: tuple[int, int] = DISPLAY_SIZE) -> bytes:
    """A plain AVIF (AV1 in HEIF), encoded by Pillow."""
    return _save(_plain(size), "AVIF", quality=60)


@cache
def heic(size: tuple[int, int] = DISPLAY_SIZE) -> bytes:
    """A plain HEIC (HEVC in HEIF), encoded by pillow-heif."""
    buffer = io.BytesIO()
    pillow_heif.from_pillow(_plain(size)).save(buffer, quality=60)
    return buffer.getvalue()


@cache
def tiff(compression: str = "tiff_lzw") -> bytes:
    """A baseline TIFF (``raw``, ``tiff_lzw``, ``tiff_adobe_deflate`` or ``packbits``)."""
    return _save(_plain(), "TIFF", compression=compression)


@cache
def tiff_jpeg_compressed() -> bytes:
    """A TIFF with JPEG compression (tag 259 = 7), outside the accepted baseline."""
    return _save(_plain(), "TIFF", compression="jpeg")


@cache
def grey_jpeg() -> bytes:
    """An 8-bit single-channel (greyscale) JPEG."""
    return _save(_plain(mode="L"), "JPEG", quality=90)


@cache
def grey_png() -> bytes:
    """An 8-bit greyscale PNG."""
    return _save(_plain(mode="L"), "PNG")


@cache
def grey16_png(level: int = 32768) -> bytes:
    """A 16-bit greyscale PNG, every pixel at ``level`` out of 65535."""
    return _save(Image.new("I;16", DISPLAY_SIZE, level), "PNG")


@cache
def rgb16_png(rgb: tuple[int, int, int] = (65535, 32768, 0)) -> bytes:
    """A 16-bit-per-channel RGB PNG (libvips ``rgb16``), every pixel ``rgb`` out of 65535."""
    width, height = DISPLAY_SIZE
    array = np.empty((height, width, 3), dtype=np.uint16)
    array[:, :] = rgb
    image = pyvips.Image.new_from_array(array, interpretation="rgb16")
    return bytes(image.pngsave_buffer())


@cache
def cmyk_jpeg() -> bytes:
    """A 4-channel CMYK JPEG (no ICC profile) of pure process cyan (C=100 %, M=Y=K=0)."""
    return _save(Image.new("CMYK", DISPLAY_SIZE, (255, 0, 0, 0)), "JPEG", quality=90)


@cache
def p3_jpeg() -> bytes:
    """``P3_SOURCE_SRGB`` converted to Display P3 numbers, with libvips' P3 profile embedded."""
    width, height = DISPLAY_SIZE
    array = np.empty((height, width, 3), dtype=np.uint8)
    array[:, :] = P3_SOURCE_SRGB
    srgb = pyvips.Image.new_from_array(array, interpretation="srgb")
    in_p3 = srgb.icc_export(output_profile="p3")
    return bytes(in_p3.jpegsave_buffer(Q=90, keep="icc"))


@cache
def palette_png() -> bytes:
    """A palette (mode P) PNG whose left half uses a fully transparent palette entry."""
    width, height = DISPLAY_SIZE
    image = Image.new("P", DISPLAY_SIZE, 1)
    image.putpalette([255, 0, 0, 0, 0, 255] + [0, 0, 0] * 254)
    image.paste(0, (0, 0, width // 2, height))
    return _save(image, "PNG", transparency=0)


@cache
def rgba_png() -> bytes:
    """An RGBA PNG: left half fully transparent *red*, right half opaque blue."""
    width, height = DISPLAY_SIZE
    image = Image.new("RGBA", DISPLAY_SIZE, (*BLUE, 255))
    image.paste((*RED, 0), (0, 0, width // 2, height))
    return _save(image, "PNG")


def _frames(count: int, size: tuple[int, int]) -> list[Image.Image]:
    colours = [RED, BLUE, (0, 160, 0), (250, 220, 0), (200, 0, 200), (0, 200, 200)]
    return [Image.new("RGB", size, colours[i % len(colours)]) for i in range(count)]


@cache
def animated_gif(frames: int = 4, size: tuple[int, int] = DISPLAY_SIZE) -> bytes:
    """An animated GIF of ``frames`` flat-coloured frames, the first one red."""
    first, *rest = _frames(frames, size)
    return _save(first, "GIF", save_all=True, append_images=rest, duration=100, loop=0)


@cache
def animated_webp(frames: int = 4, size: tuple[int, int] = DISPLAY_SIZE) -> bytes:
    """An animated WebP of ``frames`` flat-coloured frames, the first one red."""
    first, *rest = _frames(frames, size)
    return _save(
        first, "WEBP", save_all=True, append_images=rest, duration=100, loop=0, lossless=True
    )


@cache
def animated_avif(frames: int = 3, size: tuple[int, int] = DISPLAY_SIZE) -> bytes:
    """An AVIF image sequence (major brand ``avis``) of flat-coloured frames, the first red."""
    first, *rest = _frames(frames, size)
    return _save(first, "AVIF", save_all=True, append_images=rest, duration=100, quality=60)


def _noise(size: tuple[int, int]) -> Image.Image:
    width, height = size
    pixels = np.random.default_rng(7).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return Image.fromarray(pixels, mode="RGB")


@cache
def noisy_jpeg(size: tuple[int, int] = (256, 192)) -> bytes:
    """A JPEG of random noise: big enough that half its bytes cut through the entropy data."""
    return _save(_noise(size), "JPEG", quality=90)


@cache
def noisy_png(size: tuple[int, int] = (256, 192)) -> bytes:
    """A PNG of random noise (barely compressible, so its IDAT dominates the file)."""
    return _save(_noise(size), "PNG")


@cache
def noisy_webp(size: tuple[int, int] = (256, 192)) -> bytes:
    """A lossy WebP of random noise."""
    return _save(_noise(size), "WEBP", quality=90)


@cache
def salient(
    size: tuple[int, int] = (1600, 900), centre: tuple[int, int] = (1300, 220), radius: int = 70
) -> bytes:
    """A PNG of dim grey noise with one bright yellow disc (the salient object) at ``centre``."""
    width, height = size
    rng = np.random.default_rng(11)
    pixels = rng.integers(40, 80, (height, width, 3), dtype=np.uint8)
    ys, xs = np.mgrid[0:height, 0:width]
    pixels[(xs - centre[0]) ** 2 + (ys - centre[1]) ** 2 < radius**2] = (255, 225, 30)
    return _save(Image.fromarray(pixels, mode="RGB"), "PNG")


def yellow_fraction(data: bytes) -> float:
    """The share of an encoded image's pixels that are ``salient``'s yellow disc."""
    pixels = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.int16)
    return float(((pixels[..., 0] > 200) & (pixels[..., 1] > 180) & (pixels[..., 2] < 90)).mean())


@cache
def scene(seed: int = 0, size: tuple[int, int] = (320, 240), quality: int = 90) -> bytes:
    """A photo-like JPEG drawn from ``seed``: a two-colour gradient with discs and bars of
    random colours. The same seed at another size or quality is a near-duplicate (pHash a few
    bits apart); another seed is a different picture (~32 bits apart)."""
    rng = np.random.default_rng(seed)
    width, height = 640, 480
    ramp = np.linspace(0.0, 1.0, height)[:, None, None]
    top, bottom = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    pixels = (top * (1 - ramp) + bottom * ramp).repeat(width, axis=1)
    ys, xs = np.mgrid[0:height, 0:width]
    for _ in range(6):
        cx, cy, r = rng.integers(0, width), rng.integers(0, height), rng.integers(30, 160)
        pixels[(xs - cx) ** 2 + (ys - cy) ** 2 < r * r] = rng.integers(0, 256, 3)
    for _ in range(3):
        x0, y0 = rng.integers(0, width - 60), rng.integers(0, height - 60)
        pixels[y0 : y0 + rng.integers(20, 200), x0 : x0 + rng.integers(20, 200)] = rng.integers(
            0, 256, 3
        )
    image = Image.fromarray(pixels.astype(np.uint8), mode="RGB").resize(
        size, Image.Resampling.LANCZOS
    )
    return _save(image, "JPEG", quality=quality)


def truncated(data: bytes) -> bytes:
    """The first half of ``data``: a valid header and an abrupt end."""
    return data[: len(data) // 2]


@cache
def jpeg_garbage_after_header() -> bytes:
    """A JPEG whose SOI, tables and frame header are valid, followed by random bytes and an EOI."""
    data = noisy_jpeg()
    sof = data.index(b"\xff\xc0")
    (length,) = struct.unpack(">H", data[sof + 2 : sof + 4])
    garbage = np.random.default_rng(3).integers(0, 256, 3000, dtype=np.uint8).tobytes()
    return data[: sof + 2 + length] + garbage + b"\xff\xd9"


def rational(numerator: int, denominator: int = 1) -> TiffImagePlugin.IFDRational:
    """An EXIF RATIONAL value, as Pillow writes it."""
    return _R(numerator, denominator)


def jpeg_with_exif(
    *,
    ifd0: Mapping[int, Any] | None = None,
    exif_ifd: Mapping[int, Any] | None = None,
    gps_ifd: Mapping[int, Any] | None = None,
    xmp: bytes | None = None,
    comment: bytes | None = None,
) -> bytes:
    """A grey JPEG carrying the given EXIF tags (IFD0, Exif sub-IFD, GPS sub-IFD), XMP and COM."""
    exif = Image.Exif()
    for tag, value in (ifd0 or {}).items():
        exif[tag] = value
    if exif_ifd:
        exif.get_ifd(ExifTags.IFD.Exif).update(exif_ifd)
    if gps_ifd:
        exif.get_ifd(ExifTags.IFD.GPSInfo).update(gps_ifd)
    params: dict[str, Any] = {"exif": exif, "quality": 90}
    if xmp is not None:
        params["xmp"] = xmp
    if comment is not None:
        params["comment"] = comment
    return _save(_plain(), "JPEG", **params)


def gps_ifd(lat_ref: str = "S", lon_ref: str = "W", below_sea: bool = True) -> dict[int, Any]:
    """A GPS sub-IFD for 33°51'31.56" 151°12'3" at 123.4 m, hemispheres and altitude sign given."""
    return {
        ExifTags.GPS.GPSLatitudeRef: lat_ref,
        ExifTags.GPS.GPSLatitude: (_R(33, 1), _R(51, 1), _R(3156, 100)),
        ExifTags.GPS.GPSLongitudeRef: lon_ref,
        ExifTags.GPS.GPSLongitude: (_R(151, 1), _R(12, 1), _R(3, 1)),
        ExifTags.GPS.GPSAltitudeRef: b"\x01" if below_sea else b"\x00",
        ExifTags.GPS.GPSAltitude: _R(1234, 10),
    }


@cache
def camera_jpeg(gps: bool = True) -> bytes:
    """A JPEG with a camera's EXIF: Canon EOS R5, RF50mm, 2021-06-01 12:30 +02:00, 1/250 s,
    f/2.8, ISO 400, 50 mm, orientation 1 - and, when ``gps``, the ``GPS_*`` position above."""
    return jpeg_with_exif(
        ifd0={
            ExifTags.Base.Make: "Canon",
            ExifTags.Base.Model: "Canon EOS R5",
            ExifTags.Base.Orientation: 1,
        },
        exif_ifd={
            ExifTags.Base.DateTimeOriginal: "2021:06:01 12:30:00",
            ExifTags.Base.OffsetTimeOriginal: "+02:00",
            ExifTags.Base.ExposureTime: _R(1, 250),
            ExifTags.Base.FNumber: _R(28, 10),
            ExifTags.Base.ISOSpeedRatings: 400,
            ExifTags.Base.FocalLength: _R(50, 1),
            ExifTags.Base.LensModel: "RF50mm F1.8 STM",
        },
        gps_ifd=gps_ifd() if gps else None,
    )


@cache
def hostile_jpeg() -> bytes:
    """A JPEG with a ``<script>`` Make, a Model full of control characters, a 5000-char Software,
    GPS, an XMP packet and a COM comment."""
    return jpeg_with_exif(
        ifd0={
            ExifTags.Base.Make: HOSTILE_MAKE,
            ExifTags.Base.Model: HOSTILE_MODEL,
            ExifTags.Base.Software: HOSTILE_SOFTWARE,
        },
        gps_ifd=gps_ifd(),
        xmp=XMP_PACKET,
        comment=COMMENT,
    )


def _camera_exif() -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "Canon"
    exif[ExifTags.Base.Orientation] = 1
    exif.get_ifd(ExifTags.IFD.GPSInfo).update(gps_ifd())
    return exif


def _srgb_profile() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


@cache
def png_with_metadata() -> bytes:
    """A PNG with an eXIf chunk (Make, GPS), tEXt and zTXt comments, an XMP iTXt and an iCCP."""
    info = PngInfo()
    info.add_text("Comment", COMMENT.decode())
    info.add_text("Author", "ztxt-secret", zip=True)
    info.add_itxt("XML:com.adobe.xmp", XMP_PACKET.decode())
    return _save(_plain(), "PNG", pnginfo=info, exif=_camera_exif(), icc_profile=_srgb_profile())


@cache
def webp_with_metadata() -> bytes:
    """A WebP with EXIF (Make, GPS), XMP and an ICC profile."""
    return _save(_plain(), "WEBP", exif=_camera_exif(), xmp=XMP_PACKET, icc_profile=_srgb_profile())


def png_chunk(kind: bytes, body: bytes) -> bytes:
    """One PNG chunk: length, type, body and a valid CRC."""
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_with_chunks(*chunks: bytes, ihdr: bytes | None = None) -> bytes:
    """``png()`` with raw ``chunks`` (from ``png_chunk``) inserted right after its IHDR.

    ``ihdr`` replaces the 13-byte IHDR body (the CRC is recomputed).
    """
    data = png()
    head, rest = data[:8], data[8:]
    (length,) = struct.unpack(">I", rest[:4])
    original_ihdr, after = rest[: 12 + length], rest[12 + length :]
    first = png_chunk(b"IHDR", ihdr) if ihdr is not None else original_ihdr
    return head + first + b"".join(chunks) + after


def png_ihdr(width: int, height: int, depth: int = 8, colour: int = 2, **methods: int) -> bytes:
    """An IHDR body; ``compression``, ``filtering`` and ``interlace`` default to 0."""
    return struct.pack(
        ">IIBBBBB",
        width,
        height,
        depth,
        colour,
        methods.get("compression", 0),
        methods.get("filtering", 0),
        methods.get("interlace", 0),
    )


@cache
def png_bomb(width: int = 100_000, height: int = 100_000) -> bytes:
    """A PNG whose IHDR (valid CRC) declares ``width`` x ``height`` RGB; its IDAT is a few bytes."""
    idat = zlib.compress(b"\x00" * 64)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", png_ihdr(width, height))
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )


def _first_image_descriptor(data: bytes) -> int:
    """Offset of a GIF's first image descriptor (0x2C), past colour table and extensions."""
    flags = data[10]
    offset = 13 + (3 * 2 ** ((flags & 7) + 1) if flags & 0x80 else 0)
    while data[offset] == 0x21:  # extension: introducer, label, then sub-blocks up to a 0 length
        offset += 2
        while data[offset]:
            offset += data[offset] + 1
        offset += 1
    if data[offset] != 0x2C:
        raise ValueError("no image descriptor found")
    return offset


@cache
def gif_screen_bomb(width: int = 65535, height: int = 65535) -> bytes:
    """A 4x4 GIF whose logical screen descriptor alone claims ``width`` x ``height``."""
    data = bytearray(gif((4, 4)))
    data[6:10] = struct.pack("<HH", width, height)
    return bytes(data)


@cache
def gif_bomb(width: int = 65535, height: int = 65535) -> bytes:
    """A tiny GIF whose logical screen *and* first frame both declare ``width`` x ``height``."""
    data = bytearray(gif_screen_bomb(width, height))
    frame = _first_image_descriptor(bytes(data))
    data[frame + 5 : frame + 9] = struct.pack("<HH", width, height)
    return bytes(data)


@cache
def jpeg_bomb(width: int = 60000, height: int = 60000) -> bytes:
    """A small valid JPEG whose SOF0 segment is patched to declare ``width`` x ``height``."""
    data = bytearray(jpeg((16, 16)))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def svg() -> bytes:
    """A tiny SVG document (with the script element that makes SVG dangerous)."""
    return (
        b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
        b"<script>alert(1)</script><rect width='10' height='10'/></svg>"
    )


def svg_bare() -> bytes:
    """An SVG without an XML declaration, starting straight with ``<svg``."""
    return b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>'


@cache
def pdf() -> bytes:
    """A one-page PDF, written by Pillow."""
    return _save(_plain(), "PDF")


def postscript() -> bytes:
    """A minimal PostScript program."""
    return b"%!PS-Adobe-3.0\n/Times-Roman findfont 12 scalefont setfont\nshowpage\n"


def eps() -> bytes:
    """A minimal text EPS."""
    return b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n"


def eps_binary() -> bytes:
    """The header of a DOS binary EPS (magic C5 D0 D3 C6) followed by its PostScript section."""
    header = b"\xc5\xd0\xd3\xc6" + struct.pack("<IIIIIIH", 30, len(eps()), 0, 0, 0, 0, 0xFFFF)
    return header + eps()


@cache
def bmp() -> bytes:
    """A Windows bitmap."""
    return _save(_plain(), "BMP")


@cache
def ico() -> bytes:
    """A Windows icon."""
    return _save(_plain((32, 32)), "ICO")


def psd() -> bytes:
    """The 26-byte header of a Photoshop document (8BPS, version 1, 3 channels, 10x10, 8-bit)."""
    return b"8BPS" + struct.pack(">H6xHIIHH", 1, 3, 10, 10, 8, 3) + b"\x00" * 16


def text() -> bytes:
    """Plain UTF-8 text."""
    return b"hello, this is not an image\n"


def html() -> bytes:
    """An HTML page."""
    return b"<!DOCTYPE html><html><body><img src=x onerror=alert(1)></body></html>"


@cache
def zip_archive() -> bytes:
    """A ZIP archive holding a JPEG (an upload that *contains* an image is not an image)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("photo.jpg", jpeg())
    return buffer.getvalue()


def tiff_header(compression: int, *, big_endian: bool = False, as_long: bool = False) -> bytes:
    """A hand-built TIFF header and first directory holding only a Compression tag (259).

    Enough for ``sniff``, which reads IFD0 and nothing else. ``as_long`` stores the value as a
    LONG (type 4) instead of the usual SHORT (type 3).
    """
    endian = ">" if big_endian else "<"
    magic = b"MM\x00*" if big_endian else b"II*\x00"
    if as_long:
        entry = struct.pack(endian + "HHII", 259, 4, 1, compression)
    else:
        entry = struct.pack(endian + "HHIHH", 259, 3, 1, compression, 0)
    return magic + struct.pack(endian + "IH", 8, 1) + entry + struct.pack(endian + "I", 0)


def tiff_many_tags(count: int = 5000) -> bytes:
    """A TIFF whose first directory claims ``count`` entries (a parser-exhaustion trick)."""
    return b"II*\x00" + struct.pack("<IH", 8, count) + b"\x00" * 64


def tiff_bad_offset() -> bytes:
    """A TIFF whose first-directory offset points far past the end of the data."""
    return b"II*\x00" + struct.pack("<I", 0x7FFF_FFF0) + b"\x00" * 16


def bigtiff() -> bytes:
    """The header of a BigTIFF (magic 43), which is not baseline TIFF."""
    return b"II+\x00" + struct.pack("<HHQ", 8, 0, 16) + b"\x00" * 16


def isobmff(major: bytes, *compatible: bytes) -> bytes:
    """An ISO-BMFF ``ftyp`` box (as AVIF, HEIC, MP4 and MOV start) with the given brands."""
    body = major + b"\x00\x00\x00\x00" + b"".join(compatible)
    return struct.pack(">I", 8 + len(body)) + b"ftyp" + body + b"\x00\x00\x00\x08free"


def raw_exif(*entries: tuple[int, int, bytes], big_endian: bool = False) -> bytes:
    """An APP1-style EXIF blob (``Exif\\0\\0`` + TIFF) whose IFD0 holds ``entries`` as given.

    Each entry is ``(tag, type, value_bytes)``: the count is derived from the type's size, and
    values over 4 bytes are stored after the directory. Nothing is checked, so the types can be
    wrong on purpose (a Model stored as a RATIONAL, an Orientation as a float...).
    """
    sizes = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 7: 1, 9: 4, 10: 8, 11: 4, 12: 8}
    endian = ">" if big_endian else "<"
    head = (b"MM\x00*" if big_endian else b"II*\x00") + struct.pack(endian + "I", 8)
    data_start = 8 + 2 + 12 * len(entries) + 4
    directory, data = struct.pack(endian + "H", len(entries)), b""
    for tag, kind, value in entries:
        count = len(value) // sizes[kind]
        if len(value) <= 4:
            directory += struct.pack(endian + "HHI", tag, kind, count) + value.ljust(4, b"\x00")
        else:
            offset = data_start + len(data)
            directory += struct.pack(endian + "HHII", tag, kind, count, offset)
            data += value + b"\x00" * (len(value) & 1)
    return b"Exif\x00\x00" + head + directory + b"\x00\x00\x00\x00" + data


def jpeg_with_raw_exif(blob: bytes) -> bytes:
    """A grey JPEG whose APP1 segment is exactly ``blob`` (see ``raw_exif``)."""
    return _save(_plain(), "JPEG", quality=90, exif=blob)


@cache
def png_latin1_keyword() -> bytes:
    """A PNG whose tEXt keyword is Latin-1 ("Légende"), as the PNG spec says keywords are."""
    return png_with_chunks(png_chunk(b"tEXt", "Légende".encode("latin-1") + b"\x00une photo"))


def with_box_version(data: bytes, box: bytes, version: int) -> bytes:
    """``data`` (an ISO-BMFF file) with the version byte of its first ``box`` full box replaced."""
    patched = bytearray(data)
    patched[patched.index(box) + 4] = version
    return bytes(patched)


def heif_bomb(data: bytes, width: int = 0x4000_0060) -> bytes:
    """``data`` (an AVIF or HEIC) with its ``ispe`` box declaring ``width``: beyond libheif's own
    size limit, so it refuses to open it at all (found by ``make fuzz``, one bit flipped)."""
    patched = bytearray(data)
    ispe = patched.index(b"ispe")  # type, version(1) flags(3), width(4), height(4)
    patched[ispe + 8 : ispe + 12] = width.to_bytes(4, "big")
    return bytes(patched)


@cache
def avif_poison() -> bytes:
    """An AVIF whose essential ``pixi`` property is renamed ``p\\xc6xi``: libheif refuses it with
    an error that quotes the name, a message that is not UTF-8 (it once poisoned pyvips)."""
    data = bytearray(avif((16, 16)))
    ipma = data.index(b"ipma")  # type, then version(1) flags(3) entry_count(4)
    version, flags = data[ipma + 4], int.from_bytes(data[ipma + 5 : ipma + 8], "big")
    (count,) = struct.unpack(">I", data[ipma + 8 : ipma + 12])
    pos = ipma + 12
    for _ in range(count):
        pos += 2 if version < 1 else 4  # item id
        associations, pos = data[pos], pos + 1
        for _ in range(associations):
            data[pos] |= 0x80  # essential
            pos += 2 if flags & 1 else 1
    data[data.index(b"pixi") + 1] = 0xC6
    return bytes(data)


@cache
def apng(frames: int = 3, size: tuple[int, int] = DISPLAY_SIZE) -> bytes:
    """An animated PNG of flat-coloured frames (``acTL`` + one ``fcTL`` per frame)."""
    first, *rest = _frames(frames, size)
    return _save(first, "PNG", save_all=True, append_images=rest, duration=100, loop=0)


def _patched(data: bytes, at: int, fmt: str, *values: int) -> bytes:
    out = bytearray(data)
    struct.pack_into(fmt, out, at, *values)
    return bytes(out)


def gif_frame(left: int, top: int, width: int, height: int) -> bytes:
    """``animated_gif(2, (16, 16))`` whose first image descriptor declares the given rect."""
    data = animated_gif(2, (16, 16))
    return _patched(data, _first_image_descriptor(data) + 1, "<HHHH", left, top, width, height)


def apng_frame(left: int, top: int, width: int, height: int, index: int = 1) -> bytes:
    """``apng(3, (16, 16))`` whose ``index``-th fcTL declares the given rect (CRC fixed)."""
    data = apng(3, (16, 16))
    pos = -1
    for _ in range(index + 1):
        pos = data.index(b"fcTL", pos + 1)
    body = bytearray(data[pos + 4 : pos + 4 + 26])
    struct.pack_into(">IIII", body, 4, width, height, left, top)
    return data[: pos - 4] + png_chunk(b"fcTL", bytes(body)) + data[pos + 4 + 26 + 4 :]


def webp_frame(left: int, top: int, width: int, height: int) -> bytes:
    """``animated_webp(2, (16, 16))`` whose first ANMF chunk declares the given rect."""
    data = animated_webp(2, (16, 16))
    body = data.index(b"ANMF") + 8
    out = bytearray(data)
    for offset, value in ((0, left // 2), (3, top // 2), (6, width - 1), (9, height - 1)):
        out[body + offset : body + offset + 3] = value.to_bytes(3, "little")
    return bytes(out)
