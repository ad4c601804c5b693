// sharp, written the way its docs show: one pipeline per output from the decoded input,
// .rotate() for EXIF orientation, JPEG q85 and WebP q80; libvips single-threaded like the rest.
// Usage: node sharp_renditions.mjs EFFORT OUT PHOTO...   (EFFORT: WebP effort, 4 is sharp's default)
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import sharp from "sharp";

sharp.concurrency(1);
sharp.cache(false);
const [effort, out, ...photos] = process.argv.slice(2);
const widths = [2048, 1024, 320];
for (const [number, path] of photos.entries()) {
  const input = sharp(readFileSync(path)).rotate();
  for (const width of widths) {
    const resized = input.clone().resize({ width, withoutEnlargement: true });
    writeFileSync(join(out, `${number}-${width}.jpg`), await resized.clone().jpeg({ quality: 85 }).toBuffer());
    writeFileSync(join(out, `${number}-${width}.webp`),
      await resized.clone().webp({ quality: 80, effort: Number(effort) }).toBuffer());
  }
}
