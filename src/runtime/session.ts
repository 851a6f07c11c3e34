// The only module that imports onnxruntime-node. Runs inference graphs and training-step graphs.
//
// Host tensors are plain { dtype, shape, data } records. Inputs wrap JS memory without a copy;
// outputs can be written into caller-owned buffers (ORT's pre-allocated outputs). Note: the
// onnxruntime-node 1.30 binding still copies each output once internally (measured by bench engine).

import * as ort from 'onnxruntime-node';
import type { DType, TensorData } from '../graph/graph.js';

export interface HostTensor {
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly data: TensorData;
}

export type Device = 'cpu' | 'webgpu';

export interface SessionOptions {
  device?: Device;
  /** Intra-op threads; default: ORT's choice (all physical cores). */
  threads?: number;
  /** Graph optimization level; 'all' fuses LayerNorm/GELU/MatMul+Add patterns. */
  optimization?: 'disabled' | 'basic' | 'extended' | 'all';
  /** Write the optimized graph here (debugging). */
  optimizedModelPath?: string;
  /**
   * ORT's memory pattern (default on): plans one arena block for all intermediates of a run. A
   * training step keeps every activation alive for the backward pass, so the planned block is
   * the whole peak at once; off, ORT allocates per tensor and frees early. Measured on the
   * ViT-B/16 training step (bench engine): about 1.1 GB less peak memory, same speed.
   */
  memPattern?: boolean;
}

const ORT_DTYPE: Record<DType, ort.Tensor.Type> = {
  float32: 'float32',
  float64: 'float64',
  float16: 'float16',
  int64: 'int64',
  int32: 'int32',
  bool: 'bool',
  uint8: 'uint8',
};

export function toOrt(t: HostTensor): ort.Tensor {
  return new ort.Tensor(ORT_DTYPE[t.dtype], t.data as never, t.shape as number[]);
}

export function fromOrt(t: ort.Tensor): HostTensor {
  const dtype = (t.type === 'bool' ? 'bool' : t.type) as DType;
  return { dtype, shape: [...t.dims], data: t.data as TensorData };
}

/** Execution providers ONNX Runtime has in this build (e.g. ['cpu'] or ['cpu','webgpu']). */
export function availableDevices(): Device[] {
  const names = ort.listSupportedBackends().map((b) => b.name);
  return (['cpu', 'webgpu'] as const).filter((d) => names.includes(d));
}

export class Session {
  private constructor(
    private readonly session: ort.InferenceSession,
    readonly device: Device,
  ) {}

  static async create(model: Uint8Array | string, o: SessionOptions = {}): Promise<Session> {
    const device = o.device ?? 'cpu';
    if (!availableDevices().includes(device)) {
      throw new Error(`device '${device}' is not available in this ONNX Runtime build (have: ${availableDevices().join(', ')})`);
    }
    const opts: ort.InferenceSession.SessionOptions = {
      executionProviders: [device],
      graphOptimizationLevel: o.optimization ?? 'all',
      ...(o.memPattern === false ? { enableMemPattern: false } : {}),
      ...(o.threads ? { intraOpNumThreads: o.threads, interOpNumThreads: 1 } : {}),
      ...(o.optimizedModelPath ? { optimizedModelFilePath: o.optimizedModelPath } : {}),
    };
    const s = typeof model === 'string' ? await ort.InferenceSession.create(model, opts) : await ort.InferenceSession.create(model, opts);
    return new Session(s, device);
  }

  get inputNames(): readonly string[] {
    return this.session.inputNames;
  }
  get outputNames(): readonly string[] {
    return this.session.outputNames;
  }

  /**
   * Runs the graph. `into` maps output names to caller-owned tensors that ORT writes in place
   * (their shapes must be exactly the outputs'); other requested outputs are returned fresh.
   */
  async run(
    feeds: Readonly<Record<string, HostTensor>>,
    outputs: readonly string[] = this.outputNames,
    into: Readonly<Record<string, HostTensor>> = {},
  ): Promise<Record<string, HostTensor>> {
    const f: Record<string, ort.Tensor> = {};
    for (const [k, v] of Object.entries(feeds)) f[k] = toOrt(v);
    const fetches: Record<string, ort.Tensor | null> = {};
    const pre: Record<string, ort.Tensor> = {};
    for (const name of outputs) {
      const target = into[name];
      if (target) fetches[name] = pre[name] = toOrt(target);
      else fetches[name] = null;
    }
    const r = await this.session.run(f, fetches as ort.InferenceSession.FetchesType);
    const out: Record<string, HostTensor> = {};
    for (const name of outputs) out[name] = pre[name] ? into[name]! : fromOrt(r[name]!);
    return out;
  }

  async dispose(): Promise<void> {
    await this.session.release();
  }
}
