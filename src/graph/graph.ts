// Symbolic tensors and the traced graph.
//
// A model is a pure function over `Tensor`s; every op builder appends one ONNX node to the
// tensor's `Graph` after checking shapes, so the node list is always in topological order.
// Dims are numbers (static) or strings (symbolic, e.g. 'B'); equal strings are equal dims.

export type DType = 'float32' | 'float64' | 'float16' | 'int64' | 'int32' | 'bool' | 'uint8';
export type Dim = number | string;
export type Shape = readonly Dim[];

export type TypedArrayFor<D extends DType> = D extends 'float32'
  ? Float32Array
  : D extends 'float64'
    ? Float64Array
    : D extends 'float16'
      ? Uint16Array
      : D extends 'int64'
        ? BigInt64Array
        : D extends 'int32'
          ? Int32Array
          : Uint8Array;

export type TensorData = Float32Array | Float64Array | Uint16Array | BigInt64Array | Int32Array | Uint8Array;

export const FLOAT_DTYPES: ReadonlySet<DType> = new Set(['float32', 'float64', 'float16']);

/** Attribute values as ONNX knows them; a tensor attribute is a `ConstData`. */
export type AttrValue = number | string | readonly number[] | readonly string[] | ConstData;

export interface ConstData {
  readonly kind: 'const';
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly data: TensorData;
}

export interface Node {
  readonly op: string;
  readonly inputs: readonly (Tensor | null)[]; // null = omitted optional input
  readonly outputs: readonly Tensor[];
  readonly attrs: Readonly<Record<string, AttrValue>>;
  readonly index: number;
}

export type TensorRole = 'input' | 'param' | 'const' | 'op';

export class Tensor {
  /** The node that produced this tensor (null for inputs, params and constants). */
  producer: Node | null = null;
  constructor(
    readonly graph: Graph,
    readonly name: string,
    readonly dtype: DType,
    readonly shape: Shape,
    readonly role: TensorRole,
  ) {}
  get rank(): number {
    return this.shape.length;
  }
  /** Static element count, or null when a dim is symbolic. */
  get size(): number | null {
    let n = 1;
    for (const d of this.shape) {
      if (typeof d !== 'number') return null;
      n *= d;
    }
    return n;
  }
  toString(): string {
    return `${this.name}:${this.dtype}[${this.shape.join(',')}]`;
  }
}

export class ShapeError extends Error {
  override name = 'ShapeError';
}

export function fmtShape(s: Shape): string {
  return `[${s.join(',')}]`;
}

export function isStatic(s: Shape): s is readonly number[] {
  return s.every((d) => typeof d === 'number');
}

export function numel(s: readonly number[]): number {
  return s.reduce((a, b) => a * b, 1);
}

export class Graph {
  readonly nodes: Node[] = [];
  readonly inputs: Tensor[] = [];
  readonly params: Tensor[] = [];
  readonly consts = new Map<Tensor, ConstData>();
  private readonly names = new Set<string>();
  private counter = 0;
  /** Name scope stack, joined with '/' into node output names (readable graphs in Netron). */
  private readonly scopes: string[] = [];

  constructor(readonly name = 'refseg') {}

  private unique(base: string): string {
    let name = base;
    while (this.names.has(name)) name = `${base}_${++this.counter}`;
    this.names.add(name);
    return name;
  }

  /** Runs `fn` with `name` pushed on the scope stack (node names read `vision/blocks.0/attn/MatMul_12`). */
  scope<T>(name: string, fn: () => T): T {
    this.scopes.push(name);
    try {
      return fn();
    } finally {
      this.scopes.pop();
    }
  }

  input(name: string, dtype: DType, shape: Shape): Tensor {
    if (this.names.has(name)) throw new Error(`graph input name '${name}' is already used`);
    const t = new Tensor(this, this.unique(name), dtype, shape, 'input');
    this.inputs.push(t);
    return t;
  }

  /** A trainable parameter: a graph input in training graphs, an initializer in exported ones. */
  param(name: string, shape: readonly number[], dtype: DType = 'float32'): Tensor {
    if (this.names.has(name)) throw new Error(`parameter name '${name}' is already used`);
    const t = new Tensor(this, this.unique(name), dtype, shape, 'param');
    this.params.push(t);
    return t;
  }

  constant(data: TensorData, shape: readonly number[], dtype: DType, hint = 'const'): Tensor {
    if (data.length !== numel(shape)) {
      throw new ShapeError(`constant '${hint}': ${data.length} values for shape ${fmtShape(shape)}`);
    }
    const t = new Tensor(this, this.unique(hint), dtype, shape, 'const');
    this.consts.set(t, { kind: 'const', dtype, shape, data });
    return t;
  }

  /** Appends a node; `outs` gives each output's dtype and shape (already inferred by the builder). */
  addNode(
    op: string,
    inputs: readonly (Tensor | null)[],
    attrs: Record<string, AttrValue>,
    outs: readonly { dtype: DType; shape: Shape }[],
  ): Tensor[] {
    for (const t of inputs) {
      if (t && t.graph !== this) throw new Error(`${op}: input ${t.name} belongs to another graph`);
    }
    const prefix = this.scopes.length ? this.scopes.join('/') + '/' : '';
    const index = this.nodes.length;
    const outputs = outs.map((o, i) =>
      new Tensor(this, this.unique(`${prefix}${op}_${index}${outs.length > 1 ? `_${i}` : ''}`), o.dtype, o.shape, 'op'),
    );
    const node: Node = { op, inputs, outputs, attrs, index };
    for (const t of outputs) t.producer = node;
    this.nodes.push(node);
    return outputs;
  }

  /** Gives a tensor a stable public name (graph outputs), via Identity. */
  named(t: Tensor, name: string): Tensor {
    if (this.names.has(name)) throw new Error(`tensor name '${name}' is already used`);
    const index = this.nodes.length;
    const out = new Tensor(this, name, t.dtype, t.shape, 'op');
    this.names.add(name);
    const node: Node = { op: 'Identity', inputs: [t], outputs: [out], attrs: {}, index };
    out.producer = node;
    this.nodes.push(node);
    return out;
  }
}
