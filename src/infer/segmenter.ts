// The segmenter: image + sentence → the mask of the one object the sentence refers to, at the
// image's original resolution (restr.md §5 protocol: letterbox, model, sigmoid, crop + bilinear
// resize back, threshold).
//
// design.md §3.8: the image is encoded once and serves any number of sentences. Models with a
// split (ReSTR) get two ONNX Runtime sessions: the image part (image → v) runs in encodeImage, the
// text part (v + words → logits: language encoder, fusion, decoder) once per sentence. A model that
// mixes image and text from the first layer (Shared-RIS, `def.split` undefined) keeps the
// letterboxed image and runs its full graph per sentence; the API is the same.
//
//   const seg = await loadSegmenter('model.safetensors');
//   const img = await seg.encodeImage(await readFile('scene.png'));
//   const a = await seg.segment(img, 'the red circle');      // image encoder not run again
//   const b = await seg.segment(img, 'the square on the left');

import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  type BinaryMask,
  DEFAULT_MAX_PIXELS,
  type LetterboxGeometry,
  type Normalization,
  type RgbImage,
  decodeImage,
  letterbox,
} from '../data/image.js';
import { type TextEncoder, textEncoderFromCheckpoint } from '../data/text.js';
import { toModelProto } from '../graph/onnx.js';
import { buildImagePart, buildTextPart } from '../models/build.js';
import { type ModelCheckpoint, decodeModelCheckpoint, loadModelCheckpoint } from '../models/checkpoint.js';
import type { AnyModelDef } from '../models/model.js';
import { type Device, type HostTensor, Session } from '../runtime/session.js';
import { assertCheckpointExists, defaultCheckpointPath } from './paths.js';
import { Predictor } from './predictor.js';
import {
  type PatchProbability,
  maskFromProbability,
  patchProbabilityFromLogits,
  probabilityFromLogits,
} from './postprocess.js';

export { defaultCheckpointPath, examplePaths, packageRoot } from './paths.js';

// ---------- public types ----------

/** A checkpoint: a `.safetensors` path (or file URL), its bytes, or one already loaded. */
export type CheckpointSource = string | URL | Uint8Array | ModelCheckpoint;

/** An image: the bytes of a JPEG/PNG/WebP/GIF/BMP file, or decoded 8-bit RGB pixels. */
export type ImageInput = Uint8Array | RgbImage;

export interface SegmenterOptions {
  /** Intra-op threads per ONNX Runtime session (default: ORT's choice, all physical cores). */
  threads?: number;
  /** Execution device (default 'cpu'; 'webgpu' where this ONNX Runtime build has it). */
  device?: Device;
  /** Images with more pixels are refused when decoding file bytes (default 40 MP, reliability.md). */
  maxPixels?: number;
}

export interface SegmentOptions {
  /** Probability at or above which a pixel is in the mask (default: the model's, ReSTR 0.5). */
  threshold?: number;
}

/** Milliseconds this call spent in each stage; a stage it did not run counts 0. */
export interface SegmentTimings {
  /** Decoding the image file (0 for pixels or an encoded image). */
  decode: number;
  /** Letterbox + normalization. */
  preprocess: number;
  /** The image encoder (0 when the image was encoded before: that is the point of encodeImage). */
  imageEncoder: number;
  /** Tokenizing + the text part (language encoder, fusion, decoder); the whole model when it cannot be split. */
  text: number;
  /** Sigmoid, crop + resize to the original size, threshold. */
  postprocess: number;
  total: number;
}

export interface SegmentResult {
  /** The expression, as given. */
  text: string;
  /** 0/1 per pixel at the ORIGINAL image size, row-major. */
  mask: BinaryMask;
  /** Foreground probability per pixel at the original size, row-major. */
  probability: Float32Array;
  /** ReSTR's coarse patch probabilities over the letterboxed canvas (absent for models without them). */
  patchProbability?: PatchProbability;
  /** Where the image sits in the model's S×S input (to map patches back onto the image). */
  letterbox: LetterboxGeometry;
  /** Pixels in the mask. */
  area: number;
  /** Mean probability inside the mask (0 when the mask is empty): the model's confidence. */
  score: number;
  threshold: number;
  timings: SegmentTimings;
}

/** Timings of encodeImage, in milliseconds. */
export interface EncodeTimings {
  decode: number;
  preprocess: number;
  imageEncoder: number;
}

/**
 * An image prepared once for many expressions: decoded, letterboxed and (for models that split)
 * run through the image encoder. Only the segmenter that made it can use it.
 */
export interface EncodedImage {
  readonly width: number;
  readonly height: number;
  /** The decoded pixels (EXIF orientation applied): what masks align with, and what to draw on. */
  readonly rgb: RgbImage;
  readonly letterbox: LetterboxGeometry;
  readonly timings: EncodeTimings;
}

interface EncodedState {
  owner: Segmenter;
  /** Split models: the image part's outputs by name. */
  features?: Record<string, HostTensor>;
  /** Unsplit models: the [1,3,S,S] input, kept for every expression's full run. */
  input?: Float32Array;
}

// The engine state behind an EncodedImage stays out of the public object.
const encodedState = new WeakMap<EncodedImage, EncodedState>();

interface Engine {
  /** Split: image part, then text part. */
  image?: Session;
  text?: Session;
  /** Unsplit: the full graph. */
  full?: Predictor;
}

const ms = (t0: number): number => performance.now() - t0;

function isRgbImage(x: unknown): x is RgbImage {
  const r = x as RgbImage;
  return (
    typeof x === 'object' &&
    x !== null &&
    !(x instanceof Uint8Array) &&
    typeof r.width === 'number' &&
    r.data instanceof Uint8Array
  );
}

function toCheckpoint(source: CheckpointSource): ModelCheckpoint {
  if (source instanceof Uint8Array) return decodeModelCheckpoint(source);
  if (typeof source === 'string' || source instanceof URL) {
    const path = source instanceof URL ? fileURLToPath(source) : resolve(source);
    assertCheckpointExists(path);
    return loadModelCheckpoint(path);
  }
  if (source && typeof source === 'object' && 'def' in source && 'params' in source) return source;
  throw new TypeError('loadSegmenter: expected a checkpoint path, URL, bytes or a loaded checkpoint');
}

// ---------- the segmenter ----------

export class Segmenter {
  private disposed = false;

  private constructor(
    /** The model's definition (ReSTR, ...). */
    readonly def: AnyModelDef,
    /** The validated model config the checkpoint carries. */
    readonly config: unknown,
    private readonly textEncoder: TextEncoder,
    private readonly engine: Engine,
    private readonly maxPixels: number,
  ) {}

  /** @internal Use loadSegmenter. */
  static async create(ck: ModelCheckpoint, o: SegmenterOptions): Promise<Segmenter> {
    const { def, config, params } = ck;
    const textEncoder = textEncoderFromCheckpoint(ck.vocab, def.maxTokens(config), 'checkpoint');
    const sessionOptions = {
      ...(o.threads ? { threads: o.threads } : {}),
      ...(o.device ? { device: o.device } : {}),
    };
    const engine: Engine = {};
    if (def.split) {
      // Batch 1: one image, one expression per run; a fixed batch lets ORT plan every shape.
      const part = (b: ReturnType<typeof buildImagePart>) =>
        toModelProto(b.graph, { outputs: b.outputs, paramValues: params });
      engine.image = await Session.create(part(buildImagePart(def, config, 1)), sessionOptions);
      engine.text = await Session.create(part(buildTextPart(def, config, 1)), sessionOptions);
    } else {
      engine.full = await Predictor.create(def, config, params, sessionOptions);
    }
    return new Segmenter(def, config, textEncoder, engine, o.maxPixels ?? DEFAULT_MAX_PIXELS);
  }

  /** Model kind ('restr', ...). */
  get kind(): string {
    return this.def.kind;
  }
  /** S: the model's square input side. */
  get imageSize(): number {
    return this.def.imageSize(this.config);
  }
  /** Words per expression the model reads (longer expressions are truncated). */
  get maxTokens(): number {
    return this.def.maxTokens(this.config);
  }
  /** The model's default binarization threshold. */
  get threshold(): number {
    return this.def.threshold(this.config);
  }
  /** Whether the image encoder runs once per image (true) or the whole model per expression. */
  get split(): boolean {
    return this.engine.image !== undefined;
  }
  /** Whether results carry `patchProbability` (ReSTR's patch_logits output). */
  get hasPatchProbability(): boolean {
    const names = this.engine.text ? this.engine.text.outputNames : this.engine.full!.outputs;
    return names.includes('patch_logits');
  }

  private check(): void {
    if (this.disposed) throw new Error('segmenter: used after dispose()');
  }

  /**
   * Decodes (when given file bytes), letterboxes and encodes an image once, for any number of
   * `segment` calls. File bytes go through decodeImage: magic-byte allow-list, pixel limit, EXIF
   * orientation, 8-bit sRGB.
   */
  async encodeImage(image: ImageInput, o: { source?: string } = {}): Promise<EncodedImage> {
    this.check();
    let t0 = performance.now();
    let rgb: RgbImage;
    let decode = 0;
    if (image instanceof Uint8Array) {
      rgb = await decodeImage(image, { source: o.source ?? 'image', maxPixels: this.maxPixels });
      decode = ms(t0);
    } else if (isRgbImage(image)) {
      if (!(image.width > 0 && image.height > 0) || image.data.length !== image.width * image.height * 3)
        throw new Error(
          `image: ${image.data.length} bytes do not make a ${image.width}×${image.height} RGB image`,
        );
      if (image.width * image.height > this.maxPixels)
        throw new Error(`image: ${image.width}×${image.height} pixels, over the limit of ${this.maxPixels}`);
      rgb = image;
    } else {
      throw new TypeError(
        'encodeImage: expected image file bytes (Uint8Array) or {width, height, data} RGB pixels',
      );
    }
    rgb = { width: rgb.width, height: rgb.height, data: rgb.data }; // drop decoder extras (format, orientation)

    t0 = performance.now();
    const S = this.imageSize;
    const norm = this.def.normalization(this.config) as unknown as Normalization;
    const boxed = letterbox(rgb, S, norm);
    const preprocess = ms(t0);
    const { tensor, ...box } = boxed;

    t0 = performance.now();
    const state: EncodedState = { owner: this };
    if (this.engine.image) {
      state.features = await this.engine.image.run({
        image: { dtype: 'float32', shape: [1, 3, S, S], data: tensor },
      });
    } else {
      state.input = tensor;
    }
    const imageEncoder = this.engine.image ? ms(t0) : 0;

    const encoded: EncodedImage = Object.freeze({
      width: rgb.width,
      height: rgb.height,
      rgb,
      letterbox: Object.freeze(box),
      timings: Object.freeze({ decode, preprocess, imageEncoder }),
    });
    encodedState.set(encoded, state);
    return encoded;
  }

  /**
   * The mask of the object `text` refers to. `image` may be file bytes, RGB pixels, or an
   * EncodedImage from this segmenter (then the image encoder is not run again).
   */
  async segment(
    image: ImageInput | EncodedImage,
    text: string,
    o: SegmentOptions = {},
  ): Promise<SegmentResult> {
    this.check();
    const t0 = performance.now();
    if (typeof text !== 'string') throw new TypeError('segment: text must be a string');
    if (text.trim().length === 0) throw new Error('segment: text is empty');
    const threshold = o.threshold ?? this.threshold;
    if (!(threshold >= 0 && threshold <= 1))
      throw new Error(`segment: threshold must be in [0, 1], got ${threshold}`);

    let encoded: EncodedImage;
    let fresh: EncodeTimings = { decode: 0, preprocess: 0, imageEncoder: 0 };
    const given = encodedState.get(image as EncodedImage);
    if (given) {
      if (given.owner !== this) throw new Error('segment: this image was encoded by another segmenter');
      encoded = image as EncodedImage;
    } else {
      encoded = await this.encodeImage(image as ImageInput);
      fresh = encoded.timings;
    }
    const state = encodedState.get(encoded)!;

    let t = performance.now();
    const L = this.maxTokens;
    const words: HostTensor = { dtype: 'int64', shape: [1, L], data: this.textEncoder.encode(text) };
    let maskLogits: Float32Array;
    let patchLogits: Float32Array | undefined;
    if (this.engine.text) {
      const out = await this.engine.text.run({ ...state.features!, [this.def.tokenInput]: words });
      maskLogits = out.mask_logits!.data as Float32Array;
      patchLogits = out.patch_logits?.data as Float32Array | undefined;
    } else {
      const out = await this.engine.full!.predict(state.input!, words.data as BigInt64Array, 1);
      maskLogits = out.maskLogits;
      patchLogits = out.extra.patch_logits?.data as Float32Array | undefined;
    }
    const textMs = ms(t);

    t = performance.now();
    const { width, height } = encoded;
    const probability = probabilityFromLogits(maskLogits, encoded.letterbox, width, height);
    const { mask, area, score } = maskFromProbability(probability, width, height, threshold);
    const patchProbability = patchLogits ? patchProbabilityFromLogits(patchLogits) : undefined;
    const postprocess = ms(t);

    return {
      text,
      mask,
      probability,
      ...(patchProbability ? { patchProbability } : {}),
      letterbox: encoded.letterbox,
      area,
      score,
      threshold,
      timings: { ...fresh, text: textMs, postprocess, total: ms(t0) },
    };
  }

  /** Several expressions on one image: the image is decoded and encoded once. */
  async segmentAll(
    image: ImageInput | EncodedImage,
    texts: readonly string[],
    o: SegmentOptions = {},
  ): Promise<SegmentResult[]> {
    const encoded = encodedState.has(image as EncodedImage)
      ? (image as EncodedImage)
      : await this.encodeImage(image as ImageInput);
    const out: SegmentResult[] = [];
    for (const text of texts) out.push(await this.segment(encoded, text, o));
    // The first result carries the encoding cost, so summing timings over results stays honest.
    if (out[0] && encoded !== image) {
      const t = out[0].timings;
      Object.assign(t, encoded.timings, {
        total: t.total + encoded.timings.decode + encoded.timings.preprocess + encoded.timings.imageEncoder,
      });
    }
    return out;
  }

  /**
   * One run on a blank image so the first real request does not pay ONNX Runtime's lazy
   * initialization (memory arenas, kernel selection). Servers call it before reporting ready.
   */
  async warmUp(): Promise<void> {
    const S = this.imageSize;
    await this.segment({ width: S, height: S, data: new Uint8Array(S * S * 3).fill(128) }, 'warm up');
  }

  /** Releases the ONNX Runtime sessions. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await this.engine.image?.dispose();
    await this.engine.text?.dispose();
    await this.engine.full?.dispose();
  }
}

/**
 * Loads a segmenter from a checkpoint (default: the built-in model `models/default.safetensors`).
 * The checkpoint must carry its vocabulary (`refseg train` and `refseg init --vocab` store it).
 */
export async function loadSegmenter(
  source: CheckpointSource = defaultCheckpointPath(),
  o: SegmenterOptions = {},
): Promise<Segmenter> {
  return Segmenter.create(toCheckpoint(source), o);
}
