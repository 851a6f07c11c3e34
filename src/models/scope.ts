// Weight sharing (ReSTR's CME†, spec/restr.md §1.4): a Scope whose `param` returns the tensor
// already registered under the same name instead of creating a second one, so one block can be
// applied several times with the SAME parameter tensors. The autodiff driver sums the gradient
// contributions of every application (fan-out accumulation), which is exactly the gradient of
// a shared weight.

import { ShapeError, type Tensor } from '../graph/graph.js';
import { type Init, Scope } from '../nn/params.js';

class ReuseScope extends Scope {
  override sub(name: string | number, group?: string): Scope {
    return new ReuseScope(
      this.registry,
      this.prefix ? `${this.prefix}.${name}` : String(name),
      group ?? this.group,
    );
  }

  override param(
    name: string,
    shape: readonly number[],
    init: Init,
    opts: { decay?: boolean; buffer?: boolean } = {},
  ): Tensor {
    const full = this.prefix ? `${this.prefix}.${name}` : name;
    const t = this.registry.tensors.get(full);
    if (!t) return super.param(name, shape, init, opts);
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new ShapeError(
        `shared parameter '${full}' is [${t.shape.join(',')}], reused as [${shape.join(',')}]`,
      );
    }
    return t;
  }
}

/** `s` as a scope whose parameters are created once and reused on every later call. */
export function reuseScope(s: Scope): Scope {
  return new ReuseScope(s.registry, s.prefix, s.group);
}
