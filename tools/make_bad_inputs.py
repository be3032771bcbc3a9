"""Writes the awkward and hostile image fixtures in tests/data/inputs/ (deterministic).

Run: .venv/bin/python tools/make_bad_inputs.py
"""
import io
import struct
import zlib
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "data" / "inputs"
FACE = ROOT / "tests" / "data" / "photos" / "lfw_Serena_Williams_0001.jpg"


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    face = Image.open(FACE).convert("RGB")
    # A header claiming 30000x30000 RGBA pixels (3.6 GB decoded) with almost no data: a decompression bomb.
    ihdr = struct.pack(">IIBBBBB", 30000, 30000, 8, 6, 0, 0, 0)
    bomb = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(b"\0" * 1024)) + png_chunk(b"IEND", b"")
    (OUT / "bomb_30000x30000.png").write_bytes(bomb)
    Image.new("RGB", (1, 1), (128, 128, 128)).save(OUT / "one_pixel.png")
    face.convert("L").save(OUT / "face_gray.png")
    gray = face.convert("L")
    Image.frombytes("I;16", gray.size, b"".join(struct.pack("<H", v * 257) for v in gray.tobytes())).save(OUT / "face_gray16.png")
    # 16 bits per channel RGB, written by hand (PIL cannot write 48-bit PNG).
    w, h = face.size
    rows = b"".join(b"\0" + b"".join(struct.pack(">HHH", *(v * 257 for v in face.getpixel((x, y)))) for x in range(w)) for y in range(h))
    rgb16 = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)) + png_chunk(b"IDAT", zlib.compress(rows, 9)) + png_chunk(b"IEND", b"")
    (OUT / "face_rgb16.png").write_bytes(rgb16)
    face.convert("CMYK").save(OUT / "face_cmyk.jpg", quality=92)
    full = io.BytesIO()
    face.save(full, "JPEG", quality=92)
    (OUT / "face_truncated.jpg").write_bytes(full.getvalue()[: len(full.getvalue()) // 3])
    (OUT / "empty.jpg").write_bytes(b"")
    (OUT / "not_an_image.jpg").write_bytes(b"This is a text file pretending to be a JPEG.\n" * 20)
    # EXIF orientation 6 (rotate 90 clockwise to view): pixels stored rotated the other way.
    exif = Image.Exif()
    exif[0x0112] = 6
    face.rotate(90, expand=True).save(OUT / "face_exif_rotated.jpg", quality=92, exif=exif.tobytes())
    # No face at all: smooth noise-free gradient.
    Image.frombytes("RGB", (160, 120), bytes((x * 255 // 159) for y in range(120) for x in range(160) for _ in range(3))).save(OUT / "no_face.png")
    for p in sorted(OUT.iterdir()):
        print(p.relative_to(ROOT), p.stat().st_size)


if __name__ == "__main__":
    main()
