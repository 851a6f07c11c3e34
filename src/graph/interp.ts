// 1-D linear interpolation matrices with ONNX Resize semantics (mode 'linear').
//
// Bilinear resize is separable and linear: Y = A_h · X · A_wᵀ on the last two axes, so its
// gradient is dX = A_hᵀ · dY · A_w. The same matrices map probabilities back to the original
// image in evaluation, so training, export and metrics agree on one definition.

import type { ResizeCoord } from './ops.js';

/** Source coordinate of output index `o` (ONNX Resize coordinate_transformation_mode). */
export function sourceCoord(o: number, inSize: number, outSize: number, coord: ResizeCoord): number {
  const scale = outSize / inSize;
  let x: number;
  if (coord === 'align_corners') x = outSize === 1 ? 0 : (o * (inSize - 1)) / (outSize - 1);
  else if (coord === 'half_pixel') x = (o + 0.5) / scale - 0.5;
  else x = o / scale;
  return Math.min(Math.max(x, 0), inSize - 1);
}

/** Row-major [outSize, inSize] matrix A with y = A·x for a 1-D linear resize. */
export function interpMatrix(inSize: number, outSize: number, coord: ResizeCoord): Float32Array {
  const a = new Float32Array(outSize * inSize);
  for (let o = 0; o < outSize; o++) {
    const x = sourceCoord(o, inSize, outSize, coord);
    const x0 = Math.floor(x);
    const x1 = Math.min(x0 + 1, inSize - 1);
    const w1 = x - x0;
    a[o * inSize + x0]! += 1 - w1;
    a[o * inSize + x1]! += w1;
  }
  return a;
}

/** Transpose of a row-major [rows, cols] matrix. */
export function transposeMatrix(a: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(a.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * rows + r] = a[r * cols + c]!;
  return t;
}
