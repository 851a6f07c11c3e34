// Parameters as a typed tree of names: a `Scope` creates graph parameters under a dotted prefix
// (`vision.blocks.0.attn.qkv.weight`, timm's names) and records how each is initialized and
// optimized, so init, checkpoints, weight decay and learning-rate groups all read one registry.

import type { Graph, Tensor } from '../graph/graph.js';

export type Init =
  | { kind: 'trunc_normal'; std: number } // timm: trunc_normal_(std) cut at ±2 (absolute)
  | { kind: 'normal'; std: number }
  | { kind: 'uniform'; bound: number } // U(−bound, bound)
  | { kind: 'zeros' }
  | { kind: 'ones' }
  | { kind: 'fixed'; data: Float32Array }; // a constant-initialized parameter (e.g. BN running stats)

export interface ParamSpec {
  readonly name: string;
  readonly shape: readonly number[];
  readonly init: Init;
  /** Decoupled weight decay applies (timm: weights of rank ≥ 2 only, never norms, biases, tokens). */
  readonly decay: boolean;
  /** Learning-rate group (e.g. 'vision' gets the backbone multiplier). */
  readonly group: string;
  /** Not trained by the optimizer (BatchNorm running statistics): updated by the graph itself. */
  readonly buffer?: boolean;
}

export const TRUNC_NORMAL_02: Init = { kind: 'trunc_normal', std: 0.02 };
/** torch.nn.Linear's default weight init (kaiming_uniform_ with a = √5): U(±1/√fan_in). */
export const torchLinearInit = (fanIn: number): Init => ({ kind: 'uniform', bound: 1 / Math.sqrt(fanIn) });

export class Registry {
  readonly specs = new Map<string, ParamSpec>();
  readonly tensors = new Map<string, Tensor>();
  constructor(readonly graph: Graph) {}
}

export class Scope {
  constructor(
    readonly registry: Registry,
    readonly prefix: string,
    readonly group: string,
  ) {}

  static root(graph: Graph, group = 'default'): Scope {
    return new Scope(new Registry(graph), '', group);
  }

  get graph(): Graph {
    return this.registry.graph;
  }

  /** A child scope `prefix.name`; `group` switches the learning-rate group for the subtree. */
  sub(name: string | number, group?: string): Scope {
    return new Scope(this.registry, this.prefix ? `${this.prefix}.${name}` : String(name), group ?? this.group);
  }

  param(name: string, shape: readonly number[], init: Init, opts: { decay?: boolean; buffer?: boolean } = {}): Tensor {
    const full = this.prefix ? `${this.prefix}.${name}` : name;
    const spec: ParamSpec = {
      name: full,
      shape,
      init,
      decay: opts.decay ?? (shape.length >= 2 && !opts.buffer),
      group: this.group,
      ...(opts.buffer ? { buffer: true } : {}),
    };
    const t = this.graph.param(full, shape);
    this.registry.specs.set(full, spec);
    this.registry.tensors.set(full, t);
    return t;
  }
}

/** Number of elements of every parameter (buffers excluded unless asked). */
export function countParams(specs: Iterable<ParamSpec>, filter: (s: ParamSpec) => boolean = (s) => !s.buffer): number {
  let n = 0;
  for (const s of specs) if (filter(s)) n += s.shape.reduce((a, b) => a * b, 1);
  return n;
}
