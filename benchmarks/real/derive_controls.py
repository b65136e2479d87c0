"""Shortcut controls of a built benchmark: a border-only copy and a format-normalised copy.

    python benchmarks/real/derive_controls.py BUILD OUT --control border [--central 0.75]
    python benchmarks/real/derive_controls.py BUILD OUT --control format [--size 256] [--rate 8000]

BUILD is a folder a builder wrote (manifest.csv + files). OUT gets the same manifest (same
patients, labels, folds, provenance), the derived files, new `sha256_<modality>` values,
`LICENSE-SOURCE.md` (the source's, unchanged: derived images stay under its terms) and
`build_report.json` saying what was done. Train the same recipe on OUT and compare:

- **border**: every image keeps its format, size, mode and bit depth, but the central
  rectangle (`--central` of its width and of its height, default 0.75: 56% of the area, the
  lungs on a chest X-ray) is set to black. What remains is the border: burned-in markers, text,
  corners, collimation, the edge of the detector. A model that still tells the classes apart
  there has learned the acquisition, not the disease. Audio is copied unchanged (there is no
  "border" of a recording).
- **format**: every image re-encoded as an 8-bit greyscale PNG of `--size` x `--size` (the
  largest centred square, resized: no aspect-ratio cue either), every recording decoded,
  mixed to mono, resampled to `--rate` Hz (default 8000, the lowest rate of the cough source:
  downsampling removes the bandwidth that tells a 48 kHz recording from an 8 kHz one) and
  written as 16-bit PCM WAV. This removes container, codec, size, mode, bit-depth and
  sample-rate cues; what the content itself carries (JPEG artefacts already in the pixels, the
  telephone channel's sound) stays, and the report says so.

The same input gives the same output, byte for byte.
"""

from __future__ import annotations

import argparse
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
from common import (
    AUDIO_SUFFIXES,
    MODALITIES,
    environment,
    file_sha256,
    read_manifest,
    write_csv,
    write_json,
)
from PIL import Image

CONTROLS = ("border", "format")
DEFAULT_CENTRAL = 0.75
DEFAULT_SIZE = 256
DEFAULT_RATE = 8000
SIXTEEN_BIT = frozenset({"I;16", "I;16B", "I;16L", "I"})


def central_box(width: int, height: int, central: float) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of the centred rectangle spanning `central` of each side."""
    if not 0.0 < central < 1.0:
        raise ValueError(f"--central must lie strictly between 0 and 1, not {central}")
    w, h = round(width * central), round(height * central)
    left, top = (width - w) // 2, (height - h) // 2
    return left, top, left + w, top + h


def border_only(source: Path, target: Path, central: float) -> None:
    """The image with its central rectangle black, in its own format, size and mode."""
    with Image.open(source) as image:
        image.load()
        fmt, info = image.format, image.info
        masked = image.copy()
    box = central_box(masked.width, masked.height, central)
    black = 0 if len(masked.getbands()) == 1 else (0,) * len(masked.getbands())
    if masked.mode == "P":  # palette images: paint in greyscale, keep the mode family close
        masked = masked.convert("RGB")
        black = (0, 0, 0)
    if "A" in masked.getbands():  # keep the alpha channel opaque where the centre was
        black = (*black[:-1], 255)
    masked.paste(black, box)
    options = {"quality": 95} if fmt == "JPEG" else {}
    if "icc_profile" in info:
        options["icc_profile"] = info["icc_profile"]
    target.parent.mkdir(parents=True, exist_ok=True)
    masked.save(target, format=fmt or "PNG", **options)


def _grey_unit(image: Image.Image) -> np.ndarray:
    """Greyscale in [0, 1]; 16-bit images keep their range until the final 8-bit rounding."""
    if image.mode in SIXTEEN_BIT:
        data = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or data.max(initial=0) > 255 else 255.0
        return np.clip(data / top, 0.0, 1.0)
    if image.mode in ("RGBA", "LA", "PA"):  # transparent pixels as black, like a viewer on black
        image = image.convert("RGBA")
        background = Image.new("RGBA", image.size, (0, 0, 0, 255))
        image = Image.alpha_composite(background, image)
    return np.asarray(image.convert("L"), dtype=np.float64) / 255.0


def normalised_image(source: Path, target: Path, size: int) -> None:
    """An 8-bit greyscale PNG of size x size: the largest centred square, resized."""
    with Image.open(source) as image:
        image.load()
        grey = _grey_unit(image)
    height, width = grey.shape
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    square = Image.fromarray(grey[top : top + side, left : left + side].astype(np.float32), "F")
    resized = np.asarray(square.resize((size, size), Image.BICUBIC), dtype=np.float32)
    out = Image.fromarray(np.clip(np.round(resized * 255.0), 0, 255).astype(np.uint8), "L")
    target.parent.mkdir(parents=True, exist_ok=True)
    out.save(target, format="PNG", optimize=False)


def normalised_audio(source: Path, target: Path, rate: int) -> None:
    """Mono 16-bit PCM WAV at `rate` Hz (soxr resampling, as librosa does by default)."""
    import librosa
    import soundfile as sf

    wave, _ = librosa.load(source, sr=rate, mono=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    sf.write(target, np.clip(wave, -1.0, 1.0), rate, subtype="PCM_16", format="WAV")


def derive_file(
    source: Path, rel: str, control: str, central: float, size: int, rate: int
) -> tuple[str, Callable[[Path], None]]:
    """(relative output path, writer) for one file of the build."""
    is_audio = Path(rel).suffix.lower() in AUDIO_SUFFIXES
    if control == "border":
        if is_audio:
            return rel, lambda target: shutil.copyfile(source, target)
        return rel, lambda target: border_only(source, target, central)
    if is_audio:
        return str(Path(rel).with_suffix(".wav")), lambda t: normalised_audio(source, t, rate)
    return str(Path(rel).with_suffix(".png")), lambda t: normalised_image(source, t, size)


def derive(
    build: Path,
    out: Path,
    control: str,
    central: float = DEFAULT_CENTRAL,
    size: int = DEFAULT_SIZE,
    rate: int = DEFAULT_RATE,
) -> dict:
    """Write the control copy of `build` into `out`; returns the report it writes."""
    if control not in CONTROLS:
        raise ValueError(f"--control {control!r}: use one of {CONTROLS}")
    manifest = build / "manifest.csv"
    if not manifest.is_file():
        raise SystemExit(f"error: {manifest} does not exist (a builder's output folder?)")
    if out.resolve() == build.resolve():
        raise SystemExit("error: OUT must differ from BUILD (the build is never overwritten)")
    central_box(2, 2, central)  # validates the fraction before anything is written
    rows = read_manifest(manifest)
    columns = list(rows[0]) if rows else []
    modalities = [m for m in MODALITIES if m in columns]
    for modality in modalities:
        shutil.rmtree(out / modality, ignore_errors=True)
    counts: dict[str, int] = {}
    for row in rows:
        for modality in modalities:
            rel = row[modality]
            if not rel:
                continue
            new_rel, write = derive_file(build / rel, rel, control, central, size, rate)
            target = out / new_rel
            target.parent.mkdir(parents=True, exist_ok=True)
            write(target)
            row[modality] = Path(new_rel).as_posix()
            if f"sha256_{modality}" in row:
                row[f"sha256_{modality}"] = file_sha256(target)
            counts[modality] = counts.get(modality, 0) + 1
    write_csv(out / "manifest.csv", columns, rows)
    licence = build / "LICENSE-SOURCE.md"
    if licence.is_file():
        shutil.copyfile(licence, out / "LICENSE-SOURCE.md")
    report = {
        "control": control,
        "derived_from": build.name,
        "files": counts,
        "environment": environment(),
    }
    if control == "border":
        report["central_fraction_masked"] = central
        report["note"] = (
            f"images: the centred rectangle of {central:g} x width by {central:g} x height "
            f"({central**2:.0%} of the area) set to black; format, size, mode kept "
            "(JPEG re-saved at quality 95); audio copied unchanged"
        )
    else:
        report["image"] = {"format": "PNG", "mode": "L", "bit_depth": 8, "size": [size, size]}
        report["audio"] = {"format": "WAV", "subtype": "PCM_16", "channels": 1, "rate": rate}
        report["note"] = (
            "images: largest centred square, greyscale, bicubic resize, 8-bit PNG; audio: mono, "
            "resampled (soxr), 16-bit PCM WAV. Removes container, codec, size, mode, bit-depth "
            "and sample-rate cues; artefacts inside the content (JPEG blocks already in the "
            "pixels, a telephone channel's band limit and noise) remain."
        )
    write_json(out / "build_report.json", report)
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("build", type=Path, help="a builder's output folder (manifest.csv)")
    parser.add_argument("out", type=Path, help="where the control copy goes")
    parser.add_argument("--control", choices=CONTROLS, required=True)
    parser.add_argument(
        "--central",
        type=float,
        default=DEFAULT_CENTRAL,
        help="border: fraction of width and of height masked at the centre (default 0.75)",
    )
    parser.add_argument("--size", type=int, default=DEFAULT_SIZE, help="format: image side (px)")
    parser.add_argument("--rate", type=int, default=DEFAULT_RATE, help="format: audio rate (Hz)")
    args = parser.parse_args(argv)
    try:
        report = derive(args.build, args.out, args.control, args.central, args.size, args.rate)
    except ValueError as err:
        parser.error(str(err))
    print(f"{args.out}: {report['control']} control of {report['derived_from']}, {report['files']}")


if __name__ == "__main__":
    main()
