// Browser stand-in for the 'sharp' package (mapped by the import map in index.html).
// src/data/image.ts imports sharp for decodeImage, which only Node uses; the page imports the same
// compiled module for its letterbox and resize code and decodes images with the browser instead.
export default function sharp() {
  throw new Error('sharp is not available in the browser: decode images with createImageBitmap');
}
