"""Near-duplicate detection on re-cropped diagrams: hash distances of copies vs different diagrams.

    python scripts/bench_near_duplicates.py [--n 60] [--seed 0]

Draws geometry diagrams with PIL (a triangle or quadrilateral with lettered vertices and a side label,
or a circle with a chord; positions, sizes and labels random), then makes copies the way datasets re-crop
figures: uniform borders trimmed or padded (0-20% per side), rescaled by 5-15%, re-encoded as JPEG. A
"different" diagram is another drawing of the same family (the hard case: same question, same answer,
another figure). For each hashing method it prints the distance ranges and the detection rate of copies
and the false-match rate of different diagrams at the method's threshold.
"""

from __future__ import annotations

import argparse
import io
import random

from PIL import Image, ImageDraw

from mmreason.curation.signatures import image_hash, image_hash_untrimmed

HASH_SIZE = 16


def diagram(rng: random.Random, size=(320, 240)) -> Image.Image:
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    w, h = size
    kind = rng.choice(["triangle", "quad", "circle"])
    if kind == "circle":
        cx, cy, r = rng.randint(w // 3, 2 * w // 3), rng.randint(h // 3, 2 * h // 3), rng.randint(50, 90)
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline="black", width=2)
        a, b = (cx - r + rng.randint(0, 20), cy), (cx + rng.randint(-20, 40), cy - r + rng.randint(0, 30))
        draw.line([a, b], fill="black", width=2)
        points = [a, b, (cx, cy)]
    else:
        n = 3 if kind == "triangle" else 4
        points = [(rng.randint(40, w - 40), rng.randint(30, h - 30)) for _ in range(n)]
        draw.polygon(points, outline="black", width=2)
    for letter, (x, y) in zip("ABCD", points):
        draw.text((x + 4, y + 2), letter, fill="black")
    mid = points[0][0] // 2 + points[1][0] // 2, points[0][1] // 2 + points[1][1] // 2
    draw.text(mid, str(rng.randint(3, 30)), fill="black")
    return image


def recrop(image: Image.Image, rng: random.Random) -> Image.Image:
    """Trim or pad each side by up to 20% (uniform white border), rescale by 5-15%, JPEG q85."""
    w, h = image.size
    left, top, right, bottom = (rng.uniform(-0.2, 0.2) for _ in range(4))
    canvas = Image.new("RGB", (int(w * (1 + max(0, left) + max(0, right))), int(h * (1 + max(0, top) + max(0, bottom)))), "white")
    canvas.paste(image, (int(w * max(0, left)), int(h * max(0, top))))
    # negative values trim: only white margin is removed (the drawing sits inside a 30 px margin)
    box = (int(w * max(0, -left) * 0.1), int(h * max(0, -top) * 0.1),
           canvas.width - int(w * max(0, -right) * 0.1), canvas.height - int(h * max(0, -bottom) * 0.1))
    canvas = canvas.crop(box)
    scale = rng.choice([-1, 1]) * rng.uniform(0.05, 0.15) + 1
    canvas = canvas.resize((max(8, int(canvas.width * scale)), max(8, int(canvas.height * scale))), Image.BILINEAR)
    buffer = io.BytesIO()
    canvas.save(buffer, format="JPEG", quality=85)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threshold", type=int, default=24)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    originals = [diagram(rng) for _ in range(args.n)]
    copies = [recrop(image, rng) for image in originals]
    methods = {"whole image (before)": image_hash_untrimmed, "borders trimmed (now)": image_hash}
    for name, fn in methods.items():
        hashes = [fn(image, HASH_SIZE) for image in originals]
        copy_d = [(fn(copy, HASH_SIZE) ^ h).bit_count() for copy, h in zip(copies, hashes)]
        other_d = [(hashes[i] ^ hashes[j]).bit_count() for i in range(args.n) for j in range(i + 1, args.n)]
        caught = sum(d <= args.threshold for d in copy_d) / len(copy_d)
        false = sum(d <= args.threshold for d in other_d) / len(other_d)
        print(f"{name:24s} copies {min(copy_d):3d}-{max(copy_d):3d} bits, different {min(other_d):3d}-{max(other_d):3d} "
              f"bits; at <= {args.threshold}: copies caught {caught:.3f}, different merged {false:.4f} "
              f"({len(copy_d)} copies, {len(other_d)} different pairs)")


if __name__ == "__main__":
    main()
