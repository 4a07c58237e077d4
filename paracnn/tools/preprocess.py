"""Any picture of one digit (or garment), prepared the way MNIST's images were made.

LeCun et al. made MNIST from NIST's black-and-white scans: each digit was
size-normalised to fit a 20×20 box keeping its aspect ratio (anti-aliasing
gives the grey levels), then placed in a 28×28 image so that its centre of
mass is at the centre. A network trained on MNIST has only ever seen digits
like that, white on black, so a photo or a drawing has to be brought to the
same form before asking it:

1. grayscale (a transparent background counts as white paper; 16-bit images are
   scaled to 8 bits, not clipped);
2. invert when the background is light (``invert="auto"`` looks at the border);
3. subtract the paper's own grey and stretch the ink to 0..255;
4. crop to the ink;
5. scale into the 20×20 box, keeping the aspect ratio;
6. paste into 28×28 with the centre of mass at the centre.

The result is uint8 pixels, which the checkpoint's own normalisation table
turns into the model's floats. Other input sizes scale the box with them
(20/28 of the height and width). Pillow does the image work.
"""

import statistics
import warnings
from dataclasses import dataclass

from ..errors import ParacnnError
from ..limits import MAX_IMAGE_PIXELS
from .extras import require

#: MNIST's digit box inside its 28×28 image.
BOX, FRAME = 20, 28
#: below this difference between the paper and the darkest ink (of 255) the image is called empty.
MIN_CONTRAST = 32
#: pixels at or above this fraction of full ink count when cropping, so faint specks do not widen the box.
INK_LEVEL = 0.25
INVERT_CHOICES = ("auto", "yes", "no")


class ImageProblem(ParacnnError):
    """One image cannot be used: unreadable, or no ink on it. The message names the file."""


@dataclass
class Prepared:
    """An image ready for the model.

    Attributes:
        pixels: ``bytes`` of ``H*W`` uint8 values, row-major, ink white on black.
        inverted: whether the picture was inverted (it had a light background).
        size: ``(width, height)`` of the picture as read.
    """

    pixels: bytes
    inverted: bool
    size: tuple


def read_image(path):
    """Open ``path`` (PNG, JPEG, BMP, PGM, anything Pillow reads) as 8-bit grayscale.

    An image of more than :data:`~paracnn.limits.MAX_IMAGE_PIXELS` is refused from its
    header, before its pixels are decoded; 16-bit grayscale is scaled to 8 bits, not clipped.
    """
    Image = require("PIL.Image", "paracnn predict")
    # NOTE: Pillow warns between its limit and twice it, and refuses past that: the warning
    # is silenced because _grayscale refuses those sizes itself, naming them.
    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                return _grayscale(img, Image, path)
    except FileNotFoundError:
        raise ImageProblem(f"{path}: no such file") from None
    except Image.UnidentifiedImageError:
        raise ImageProblem(f"{path}: not an image Pillow can read (PNG, JPEG, BMP and PGM are)") from None
    except Image.DecompressionBombError:
        raise ImageProblem(f"{path}: more than {2 * MAX_IMAGE_PIXELS / 1e6:,.0f} megapixels, far more than "
                           f"the {MAX_IMAGE_PIXELS / 1e6:,.0f} paracnn predict reads; scale it down first") from None
    except MemoryError:
        raise ImageProblem(f"{path}: not enough memory to decode the image; scale it down first") from None
    except (OSError, ValueError) as e:
        raise ImageProblem(f"{path}: cannot read the image ({e})") from None


def _too_large(path, size):
    width, height = size
    return (f"{path}: {width}x{height} is {width * height / 1e6:,.0f} megapixels, more than the "
            f"{MAX_IMAGE_PIXELS / 1e6:,.0f} paracnn predict reads; scale it down first")


def _grayscale(img, Image, path):
    """The opened ``img`` decoded as mode ``L``: transparency over white paper, 16 bits scaled to 8."""
    if img.size[0] * img.size[1] > MAX_IMAGE_PIXELS:
        raise ImageProblem(_too_large(path, img.size))
    img.load()
    if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:
        rgba = img.convert("RGBA")
        paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(paper, rgba)
    elif img.mode.startswith("I;16") or (img.mode == "I" and img.getextrema()[1] > 255):
        # NOTE: convert("L") clips 16-bit values at 255, so grey paper and grey ink both
        # became white and the digit vanished; 65535 / 257 = 255 keeps their contrast.
        img = img.convert("I").point(lambda v: v * (1 / 257))
    return img.convert("L")


def prepare(img, shape=(1, FRAME, FRAME), invert="auto", name="image"):
    """Turn a grayscale Pillow image into the model's uint8 input (see the module's steps).

    Args:
        img: a Pillow image in mode ``L``.
        shape: the model's ``(1, H, W)`` input shape.
        invert: ``"auto"`` (invert when the border is light), ``"yes"`` or ``"no"``.
        name: the file name, for messages.

    Raises:
        ImageProblem: the image holds no ink (blank, or too little contrast).
    """
    ImageOps = require("PIL.ImageOps", "paracnn predict")
    if invert not in INVERT_CHOICES:
        raise ValueError(f"invert must be one of {', '.join(INVERT_CHOICES)}, not {invert!r}")
    _, height, width = shape
    paper = _border_median(img)
    inverted = invert == "yes" or (invert == "auto" and paper > 127)
    if inverted:
        img, paper = ImageOps.invert(img), 255 - paper
    peak = img.getextrema()[1]
    if peak - paper < MIN_CONTRAST:
        hint = "blank or too faint" if invert == "auto" else f"blank, or --invert {invert} is wrong for it"
        raise ImageProblem(f"{name}: no ink found (nothing stands out from the background by more "
                           f"than {max(0, round(peak - paper))} of 255 levels); is it {hint}?")
    img = img.point(_stretch_table(paper, peak))
    box = img.point([255 if v >= 255 * INK_LEVEL else 0 for v in range(256)]).getbbox()
    digit = _fit(img.crop(box), (max(1, round(BOX * width / FRAME)), max(1, round(BOX * height / FRAME))))
    return Prepared(_centred(digit, width, height), inverted, img.size)


def _border_median(img):
    """The median of the outermost pixels: the paper's colour, whatever the digit does."""
    w, h = img.size
    strips = [(0, 0, w, 1), (0, h - 1, w, h), (0, 0, 1, h), (w - 1, 0, w, h)]
    values = []
    for strip in strips:
        values.extend(img.crop(strip).tobytes())
    return statistics.median(values)


def _stretch_table(paper, peak):
    """The 256-entry map taking the paper's grey to 0 and the strongest ink to 255."""
    span = peak - paper
    return [min(255, max(0, round((v - paper) * 255 / span))) for v in range(256)]


def _fit(img, box):
    """``img`` scaled to fit ``box`` (width, height) with its aspect ratio kept, anti-aliased."""
    Image = require("PIL.Image", "paracnn predict")
    w, h = img.size
    scale = min(box[0] / w, box[1] / h)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return img.resize(size, Image.Resampling.LANCZOS)


def _centred(digit, width, height):
    """``digit`` pasted into a black ``width``×``height`` frame, its centre of mass at the centre."""
    Image = require("PIL.Image", "paracnn predict")
    w, h = digit.size
    values = digit.tobytes()
    mass = sum(values) or 1
    # NOTE: in pixel indices, as MNIST's centring put the mass at index (14.0, 14.0) (the mean
    # over its test set is (14.00, 13.99)), half a pixel right and down of the geometric centre.
    cx = sum(v * (i % w) for i, v in enumerate(values)) / mass
    cy = sum(v * (i // w) for i, v in enumerate(values)) / mass
    # NOTE: clamped so a lopsided digit is shifted less rather than cut off.
    left = min(max(0, round(width / 2 - cx)), width - w)
    top = min(max(0, round(height / 2 - cy)), height - h)
    frame = Image.new("L", (width, height), 0)
    frame.paste(digit, (left, top))
    return frame.tobytes()
