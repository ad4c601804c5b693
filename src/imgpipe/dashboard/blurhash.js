// BlurHash decoder (https://blurha.sh): a hash -> RGBA pixels for a tiny placeholder canvas.
// The server computes the hash from a 32 px sample; decoding a 32 px wide canvas is instant and
// the browser scales it up smoothly.

const DIGITS =
  "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~";

function decode83(text) {
  let value = 0;
  for (const char of text) {
    const digit = DIGITS.indexOf(char);
    if (digit < 0) throw new Error("not a BlurHash");
    value = value * 83 + digit;
  }
  return value;
}

function toLinear(channel) {
  const v = channel / 255;
  return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
}

function toSrgb(linear) {
  const v = Math.min(1, Math.max(0, linear));
  return Math.round(v <= 0.0031308 ? v * 12.92 * 255 : (1.055 * v ** (1 / 2.4) - 0.055) * 255);
}

function signedPow(value, exponent) {
  return Math.sign(value) * Math.abs(value) ** exponent;
}

/** Is `hash` a well-formed BlurHash (right alphabet and length for its component count)? */
export function isBlurhash(hash) {
  if (typeof hash !== "string" || hash.length < 6) return false;
  try {
    const size = decode83(hash[0]);
    const count = (Math.floor(size / 9) + 1) * ((size % 9) + 1);
    return hash.length === 4 + 2 * count && [...hash].every((c) => DIGITS.includes(c));
  } catch {
    return false;
  }
}

/** Decode `hash` into `width` x `height` RGBA pixels (a Uint8ClampedArray for ImageData). */
export function decodeBlurhash(hash, width, height, punch = 1) {
  if (!isBlurhash(hash)) throw new Error("not a BlurHash");
  const size = decode83(hash[0]);
  const ny = Math.floor(size / 9) + 1;
  const nx = (size % 9) + 1;
  const maximum = ((decode83(hash[1]) + 1) / 166) * punch;
  const colours = [];
  const dc = decode83(hash.slice(2, 6));
  colours.push([toLinear(dc >> 16), toLinear((dc >> 8) & 255), toLinear(dc & 255)]);
  for (let i = 1; i < nx * ny; i++) {
    const ac = decode83(hash.slice(4 + i * 2, 6 + i * 2));
    const q = [Math.floor(ac / 361), Math.floor(ac / 19) % 19, ac % 19];
    colours.push(q.map((v) => signedPow((v - 9) / 9, 2) * maximum));
  }
  const pixels = new Uint8ClampedArray(width * height * 4);
  const cosX = (x, i) => Math.cos((Math.PI * x * i) / width);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let r = 0;
      let g = 0;
      let b = 0;
      for (let j = 0; j < ny; j++) {
        const cy = Math.cos((Math.PI * y * j) / height);
        for (let i = 0; i < nx; i++) {
          const basis = cosX(x, i) * cy;
          const [cr, cg, cb] = colours[i + j * nx];
          r += cr * basis;
          g += cg * basis;
          b += cb * basis;
        }
      }
      const at = 4 * (x + y * width);
      pixels[at] = toSrgb(r);
      pixels[at + 1] = toSrgb(g);
      pixels[at + 2] = toSrgb(b);
      pixels[at + 3] = 255;
    }
  }
  return pixels;
}

/** Paint `hash` into `canvas` (its width and height attributes decide the resolution). */
export function paintBlurhash(canvas, hash) {
  const pixels = decodeBlurhash(hash, canvas.width, canvas.height);
  const context = canvas.getContext("2d");
  context.putImageData(new ImageData(pixels, canvas.width, canvas.height), 0, 0);
}
