// refseg's library entry (package.json "main"): referring image segmentation — an image and a
// sentence in, the mask of the object the sentence refers to out.
//
//   import { loadSegmenter } from 'refseg';
//   const seg = await loadSegmenter('model.safetensors');        // or checkpoint bytes
//   const out = await seg.segment(imageBytes, 'the red cup');      // out.mask at the image's size
//   const img = await seg.encodeImage(imageBytes);                 // encode once ...
//   for (const t of texts) await seg.segment(img, t);              // ... segment many times
//
// Everything else (training, evaluation, export) is reached through the `refseg` command line.

export {
  type CheckpointSource,
  type EncodedImage,
  type EncodeTimings,
  type ImageInput,
  type SegmentOptions,
  type SegmentResult,
  type SegmentTimings,
  type SegmenterOptions,
  Segmenter,
  defaultCheckpointPath,
  examplePaths,
  loadSegmenter,
  packageRoot,
} from './infer/segmenter.js';
export type { PatchProbability } from './infer/postprocess.js';
export {
  type Color,
  type HeatmapOptions,
  type OverlayOptions,
  heatmapOverlay,
  maskToGray,
  overlayMask,
  patchProbabilityAtPixels,
  viridis,
} from './infer/draw.js';
export { type RawImage, encodePng, maskPng, rgbPng } from './infer/png.js';
export {
  type BinaryMask,
  type DecodeOptions,
  type LetterboxGeometry,
  type RgbImage,
  ImageDecodeError,
  decodeImage,
} from './data/image.js';
export { type CompressedRle, decodeRle, encodeRle } from './data/rle.js';
