// PyTorch checkpoints written by torch.save (zip format, torch ≥ 1.6).
//
// Layout (torch/serialization.py): a zip whose entries live under one folder `<archive>/`:
// `data.pkl` (the pickled object), `data/<key>` (raw little-endian bytes of each storage),
// `version`, and since torch 2.x `byteorder` ('little' or 'big'). Tensors inside data.pkl are
// `torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad,
// backward_hooks[, metadata])` calls whose storage is a persistent id
// `('storage', torch.<Type>Storage, key, location, numel)`. The pickle is read with exactly the
// allow-list of reliability.md (OrderedDict, _rebuild_tensor_v2, _rebuild_parameter, the typed
// storage classes); every storage's size and every tensor's strided extent is checked against the
// bytes present before anything is copied. Views (offsets, general strides, shared storages) are
// copied out to C order. BFloat16 is widened to float32 (there is no bf16 DType).

import { FormatError, guard } from './errors.js';
import { type ByteSource, isByteSource, memorySource, withFileSource } from './bytes.js';
import { ZipReader } from './zip.js';
import { type GlobalImpl, PickleGlobal, isTuple, unpickle } from './pickle.js';
import {
  type DType,
  type IoTensor,
  type TensorData,
  bf16BytesToF32,
  checkedNumel,
  gatherStrided,
  swapBytes,
  typedOverOwnedBytes,
  viewExtent,
} from './tensor.js';

interface StorageType {
  readonly dtype: DType;
  readonly itemsize: number;
  readonly bf16?: boolean;
}

/** `torch.<Name>Storage` → element type. Other storage classes are refused by the allow-list. */
const STORAGE_TYPES: Readonly<Record<string, StorageType>> = {
  FloatStorage: { dtype: 'float32', itemsize: 4 },
  HalfStorage: { dtype: 'float16', itemsize: 2 },
  DoubleStorage: { dtype: 'float64', itemsize: 8 },
  LongStorage: { dtype: 'int64', itemsize: 8 },
  IntStorage: { dtype: 'int32', itemsize: 4 },
  BFloat16Storage: { dtype: 'float32', itemsize: 2, bf16: true },
  ByteStorage: { dtype: 'uint8', itemsize: 1 },
  BoolStorage: { dtype: 'bool', itemsize: 1 },
};

/** A tensor rebuilt from a checkpoint (an IoTensor; the class lets us tell tensors from data). */
export class TorchTensor implements IoTensor {
  constructor(
    readonly dtype: DType,
    readonly shape: readonly number[],
    readonly data: TensorData,
  ) {}
}

interface Storage {
  readonly key: string;
  readonly type: StorageType;
  readonly typeName: string;
  readonly numel: number;
  readonly bytes: Uint8Array;
}

export interface TorchOptions {
  /** Names the file in errors. */
  source?: string;
  /** Follow this top-level key to the state dict (e.g. 'model' for BEiT-3, 'state_dict'). */
  key?: string;
}

const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/**
 * Unpickles `data.pkl` with tensors rebuilt as TorchTensor; dicts are Maps (see pickle.ts).
 * Use this to look at a checkpoint's structure; `readTorch` returns the state dict.
 */
export function readTorchObject(input: Uint8Array | ByteSource, opts: { source?: string } = {}): unknown {
  const source = opts.source ?? '<torch checkpoint>';
  const src = isByteSource(input) ? input : memorySource(input);
  return guard(source, 'torch checkpoint', () => load(src, source));
}

function load(src: ByteSource, source: string): unknown {
  const fail = (msg: string, offset?: number): never => {
    throw new FormatError(source, msg, offset);
  };
  const magic = src.size >= 4 ? src.read(0, 4) : new Uint8Array(0);
  if (magic[0] !== 0x50 || magic[1] !== 0x4b) {
    fail(
      magic[0] === 0x80
        ? 'legacy (pre-1.6, non-zip) torch.save format is not supported; re-save it with a recent torch'
        : 'not a zip-format torch checkpoint',
      0,
    );
  }
  const zip = ZipReader.open(src, { source });
  const pkls = zip.names().filter((n) => /^[^/]+\/data\.pkl$/.test(n));
  if (pkls.length !== 1) fail(`expected one <archive>/data.pkl entry, found ${pkls.length}`);
  const prefix = pkls[0]!.slice(0, -'data.pkl'.length);

  let bigEndian = false;
  if (zip.has(prefix + 'byteorder')) {
    const order = Buffer.from(zip.read(prefix + 'byteorder')).toString('latin1');
    if (order !== 'little' && order !== 'big')
      fail(`byteorder entry says ${JSON.stringify(order.slice(0, 20))}`);
    bigEndian = order === 'big';
  }

  const storages = new Map<string, Storage>();
  const persistentLoad = (pid: unknown): Storage => {
    if (!isTuple(pid) || pid.length !== 5 || pid[0] !== 'storage') {
      throw new Error(`persistent id is not ('storage', type, key, location, numel)`);
    }
    const [, type, key, location, count] = pid;
    if (
      !(type instanceof PickleGlobal) ||
      type.module !== 'torch' ||
      !Object.hasOwn(STORAGE_TYPES, type.name)
    ) {
      throw new Error(`storage type is not one of torch.{${Object.keys(STORAGE_TYPES).join(',')}}`);
    }
    if (typeof key !== 'string' || typeof location !== 'string' || !isInt(count)) {
      throw new Error('storage key/location must be strings and numel a non-negative integer');
    }
    const st = STORAGE_TYPES[type.name]!;
    const cached = storages.get(key);
    if (cached) {
      if (cached.typeName !== type.name || cached.numel !== count) {
        throw new Error(
          `storage ${JSON.stringify(key)} is referenced as ${type.name}[${count}] and ${cached.typeName}[${cached.numel}]`,
        );
      }
      return cached;
    }
    const entry = prefix + 'data/' + key;
    const e = zip.entries.get(entry);
    if (e === undefined) throw new Error(`storage ${JSON.stringify(key)} has no entry ${entry}`);
    if (e.size !== count * st.itemsize) {
      throw new Error(
        `storage ${JSON.stringify(key)} declares ${count} × ${st.itemsize} bytes but ${entry} holds ${e.size}`,
      );
    }
    let bytes = zip.read(entry);
    if (bigEndian && st.itemsize > 1) {
      bytes = bytes.slice();
      swapBytes(bytes, st.itemsize);
    }
    const s: Storage = { key, type: st, typeName: type.name, numel: count, bytes };
    storages.set(key, s);
    return s;
  };

  const rebuildTensor: GlobalImpl = {
    call(args) {
      if (args.length !== 6 && args.length !== 7)
        throw new Error(`expects 6 or 7 arguments, got ${args.length}`);
      const [storage, offset, size, stride, requiresGrad] = args;
      if (!(
        typeof storage === 'object' &&
        storage !== null &&
        storages.get((storage as Storage).key) === storage
      )) {
        throw new Error('first argument is not a storage');
      }
      const s = storage as Storage;
      if (!isInt(offset)) throw new Error(`storage offset ${String(offset)} is not a non-negative integer`);
      if (!isTuple(size) || !isTuple(stride)) throw new Error('size and stride must be tuples');
      if (typeof requiresGrad !== 'boolean') throw new Error('requires_grad is not a bool');
      const count = checkedNumel(size);
      if (typeof count === 'string') throw new Error(`size: ${count}`);
      const shape = size as readonly number[];
      const last = viewExtent(offset, shape, stride);
      if (typeof last === 'string') throw new Error(last);
      if (last >= s.numel) {
        throw new Error(
          `view (offset ${offset}, size [${shape.join(',')}], stride [${stride.join(',')}]) reaches element ${last} of storage ${JSON.stringify(s.key)} which holds ${s.numel}`,
        );
      }
      const bytes = gatherStrided(s.bytes, s.type.itemsize, offset, shape, stride as readonly number[]);
      const data = s.type.bf16 ? bf16BytesToF32(bytes) : typedOverOwnedBytes(s.type.dtype, bytes);
      return new TorchTensor(s.type.dtype, [...shape], data);
    },
  };
  const globals: Record<string, GlobalImpl> = {
    'collections.OrderedDict': {
      call(args) {
        if (args.length !== 0) throw new Error('expects no arguments');
        return new Map();
      },
      build: (obj) => obj, // state is the `_metadata` attribute (module versions): not needed
    },
    'torch._utils._rebuild_tensor_v2': rebuildTensor,
    'torch._utils._rebuild_parameter': {
      call(args) {
        if (args.length !== 3 || !(args[0] instanceof TorchTensor))
          throw new Error('expects (tensor, requires_grad, hooks)');
        return args[0];
      },
    },
  };
  for (const name of Object.keys(STORAGE_TYPES)) globals[`torch.${name}`] = {}; // nameable, not callable

  const pklName = prefix + 'data.pkl';
  return unpickle(zip.read(pklName), { source: `${source}:${pklName}`, globals, persistentLoad });
}

function describe(v: unknown): string {
  if (v instanceof TorchTensor) return 'tensor';
  if (v instanceof Map) return 'dict';
  if (Array.isArray(v)) return isTuple(v) ? 'tuple' : 'list';
  return v === null ? 'None' : typeof v;
}

/** The state dict of a torch.save checkpoint: name → tensor, in file order. */
export function readTorch(input: Uint8Array | ByteSource, opts: TorchOptions = {}): Map<string, IoTensor> {
  const source = opts.source ?? '<torch checkpoint>';
  const fail = (msg: string): never => {
    throw new FormatError(source, msg);
  };
  let obj = readTorchObject(input, { source });
  if (opts.key !== undefined) {
    if (!(obj instanceof Map) || !obj.has(opts.key)) {
      const keys = obj instanceof Map ? [...obj.keys()].map(String).join(', ') : describe(obj);
      fail(`top level has no key ${JSON.stringify(opts.key)} (it holds: ${keys})`);
    }
    obj = (obj as Map<unknown, unknown>).get(opts.key);
  }
  if (!(obj instanceof Map)) return fail(`expected a dict of tensors, found a ${describe(obj)}`);
  const out = new Map<string, IoTensor>();
  for (const [k, v] of obj) {
    if (typeof k !== 'string') fail(`state dict key ${String(k)} is not a string`);
    if (!(v instanceof TorchTensor)) {
      const dicts = [...obj].filter(([, x]) => x instanceof Map).map(([n]) => JSON.stringify(n));
      fail(
        `entry ${JSON.stringify(k)} is a ${describe(v)}, not a tensor${dicts.length > 0 && opts.key === undefined ? `; pass key (one of ${dicts.join(', ')})` : ''}`,
      );
    }
    out.set(k as string, v as TorchTensor);
  }
  return out;
}

/** Reads a checkpoint from disk, only the entries it needs (storages are read on demand). */
export function loadTorch(path: string, opts: Omit<TorchOptions, 'source'> = {}): Map<string, IoTensor> {
  return withFileSource(path, (src) => readTorch(src, { ...opts, source: path }));
}
