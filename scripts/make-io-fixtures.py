#!/usr/bin/python3
"""Writes the small fixtures that test/io/ reads, and the values they must decode to.

Run with Debian's interpreter, which has python3-torch and python3-numpy:

    /usr/bin/python3 scripts/make-io-fixtures.py

(the `python3` first on PATH may be a pyenv build without torch). Output goes to
test/fixtures/io/; every fixture has its expected values in a `*.expected.json` next to it, in the
encoding described by `enc()` below. The fixtures are deterministic (fixed seeds, no timestamps
inside the archives) so re-running the script leaves git clean unless the generator changed.

Formats written here and why they are written this way:

- refs_p0.p / refs_p2.p: pickles shaped like the refer API's `refs(unc).p`. Those files were
  written by Python 2, whose `str` is a byte string pickled as STRING (protocol 0) or
  SHORT_BINSTRING/BINSTRING (protocol 2). Python 3 pickles `bytes` differently (as a call to
  `_codecs.encode` via GLOBAL + REDUCE at protocols < 3), which our reader rightly refuses. So
  `Py2StylePickler` below overrides the `bytes` entry of the pure-Python pickler's dispatch table
  with Python 2's `save_string` (same opcodes, same memoization); everything else (ints, floats,
  unicode, dicts, lists, tuples, bools, None) already pickles as Python 2 did at these protocols.
  `check_no_globals` disassembles the result to prove no GLOBAL/REDUCE slipped in.
- misc_p4.p / misc_p5.p: ordinary Python 3 pickles (bytes, bytearray, sets, frozensets, FRAME,
  MEMOIZE, SHORT_BINUNICODE...) for the protocol 4/5 opcodes.
- vit_tiny.pth: a timm-named ViT state_dict saved by torch.save (zip format).
  torch_views.pth: {'model': OrderedDict, ...} with non-contiguous views, a storage offset, shared
  storages, every storage type we accept, a Parameter, a 0-d tensor and an empty tensor.
- vit_tiny.safetensors, vit_tiny_f16.safetensors, dtypes.safetensors: written by hand (the
  `safetensors` package is not installed) exactly as the reference implementation lays them out:
  tensors ordered by element size (largest first) then name, header keys in that same order after
  `__metadata__`, compact JSON, header padded with spaces to a multiple of 8. The TypeScript
  writer must reproduce the first two byte for byte.
- arrays.npz (np.savez, stored), arrays_compressed.npz (np.savez_compressed, deflate),
  npy_versions.npz (NPY format 1.0, 2.0 and 3.0 headers, written with np.lib.format.write_array).
- Hostile files: evil_*.p (os.system through GLOBAL + REDUCE, STACK_GLOBAL, INST; REDUCE on a
  list), evil_*.zip ('../evil', absolute name, duplicate names), past_end.safetensors (offsets past the buffer),
  object_array.npz (a pickled object array).
"""

import collections
import io
import json
import math
import os
import pickle
import pickletools
import struct
import sys
import warnings
import zipfile

import numpy as np
import torch

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'io')
# A fixed timestamp inside zip archives keeps re-runs byte-identical.
ZIP_DATE = (2020, 1, 1, 0, 0, 0)


def out(name):
    return os.path.join(ROOT, name)


def write_bytes(name, data):
    with open(out(name), 'wb') as f:
        f.write(data)


def write_json(name, value):
    with open(out(name), 'w') as f:
        json.dump(value, f, indent=1, sort_keys=False, allow_nan=False)
        f.write('\n')


# ---------------------------------------------------------------------------------------------
# Expected-value encoding shared with test/io/expected.ts. JSON has no tuples, bytes, sets,
# non-string keys, big ints or non-finite floats, so those are tagged.
def enc(v):
    if v is None or isinstance(v, bool):
        return v
    if isinstance(v, int):
        return v if abs(v) <= 2**53 - 1 else {'$bigint': str(v)}
    if isinstance(v, float):
        if math.isnan(v):
            return {'$float': 'nan'}
        if math.isinf(v):
            return {'$float': 'inf' if v > 0 else '-inf'}
        return v
    if isinstance(v, str):
        return v
    if isinstance(v, bytes):
        # In refs pickles these are Python 2 `str`: the reader decodes them as latin-1.
        return v.decode('latin-1')
    if isinstance(v, bytearray):
        return {'$bytes': bytes(v).hex()}
    if isinstance(v, Py3Bytes):
        return {'$bytes': bytes(v.b).hex()}
    if isinstance(v, tuple):
        return {'$tuple': [enc(x) for x in v]}
    if isinstance(v, list):
        return [enc(x) for x in v]
    if isinstance(v, dict):
        return {'$dict': [[enc(k), enc(x)] for k, x in v.items()]}
    if isinstance(v, frozenset):
        return {'$frozenset': [enc(x) for x in v]}
    if isinstance(v, set):
        return {'$set': [enc(x) for x in v]}
    raise TypeError(type(v))


class Py3Bytes:
    """Marks a real Python 3 `bytes` value in expected data (pickled as BINBYTES, read as bytes)."""

    def __init__(self, b):
        self.b = b


# ---------------------------------------------------------------------------------------------
# refs pickles, Python 2 style
class Py2StylePickler(pickle._Pickler):
    dispatch = pickle._Pickler.dispatch.copy()

    def save_py2_str(self, obj):
        # Python 2.7 pickle.py, Pickler.save_string, verbatim in behaviour.
        if self.bin:
            n = len(obj)
            if n < 256:
                self.write(pickle.SHORT_BINSTRING + bytes([n]) + obj)
            else:
                self.write(pickle.BINSTRING + struct.pack('<i', n) + obj)
        else:
            # Python 2's repr(str) is Python 3's repr(bytes) without the leading b.
            self.write(pickle.STRING + repr(obj)[1:].encode('ascii') + b'\n')
        self.memoize(obj)

    dispatch[bytes] = save_py2_str


def py2_dumps(obj, protocol):
    f = io.BytesIO()
    Py2StylePickler(f, protocol=protocol).dump(obj)
    return f.getvalue()


class NoGlobals(pickle.Unpickler):
    def find_class(self, module, name):
        raise AssertionError('global %s.%s in a fixture that must have none' % (module, name))


def check_no_globals(data, original):
    """Loads back with every global refused (as our reader does) and compares with the source.

    (pickletools cannot disassemble a protocol-0 STRING holding non-ASCII bytes, so the opcodes
    are checked by this round trip instead.)"""
    back = NoGlobals(io.BytesIO(data), encoding='bytes').load()
    assert repr(back) == repr(original), 'round trip differs'


def make_refs():
    def sentence(sid, raw, tokens):
        return {b'tokens': tokens, b'raw': raw, b'sent_id': sid, b'sent': raw.lower() if isinstance(raw, bytes) else raw}

    shared_tokens = [b'man', b'on', b'left']
    refs = [
        {
            b'sent_ids': [0, 1],
            b'file_name': b'COCO_train2014_000000581857_16.jpg',
            b'ann_id': 1706357,
            b'ref_id': 0,
            b'image_id': 581857,
            b'split': b'train',
            b'sentences': [
                sentence(0, b'The lady with the blue shirt', [b'the', b'lady', b'with', b'the', b'blue', b'shirt']),
                # UTF-8 bytes in a Python 2 str: read back as latin-1, one char per byte.
                sentence(1, b'caf\xc3\xa9 table \'quoted\' "double" back\\slash\ttab', [b'cafe', b'table']),
            ],
            b'category_id': 1,
        },
        {
            b'sent_ids': [2, 3],
            b'file_name': b'COCO_train2014_000000000009_2.jpg',
            b'ann_id': 2**31 - 1,
            b'ref_id': 1,
            b'image_id': 9,
            b'split': b'testA',
            b'sentences': [
                sentence(2, u'na\xefve unicode \u2603 line\nbreak \\u005c', [b'naive']),
                {b'tokens': shared_tokens, b'raw': b'man on left', b'sent_id': 3, b'sent': b'man on left'},
            ],
            b'category_id': 90,
            # Shared object: pickled once, then fetched from the memo.
            b'tokens_again': shared_tokens,
        },
        {
            # Odd values a hostile or unusual file may hold; keys that are special in JS objects.
            b'__proto__': b'not a prototype',
            b'constructor': 1,
            u'unicode_key': u'',
            b'ints': [0, 1, -1, 255, 256, 65535, 65536, -129, 2**31 - 1, -(2**31), 2**31, -(2**31) - 1,
                      2**53 - 1, -(2**53 - 1), 2**53, 2**63, -(2**70), 10**30],
            b'floats': [0.0, -0.0, 0.1, -1.5e300, 5e-324, 1e16, float('inf'), float('-inf'), float('nan')],
            b'bools': [True, False, None],
            b'tuples': [(), (1,), (1, 2), (1, 2, 3), (1, 2, 3, 4)],
            b'empty': [[], {}, b'', u''],
            b'long_str': b'x' * 300,  # BINSTRING rather than SHORT_BINSTRING at protocol 2
            b'nested': [[[[[b'deep']]]]],
            7: b'int key',
        },
    ]
    for proto in (0, 2):
        data = py2_dumps(refs, proto)
        check_no_globals(data, refs)
        # Python 2 str opcodes: STRING (S) at protocol 0; SHORT_BINSTRING (U), BINSTRING (T) at 2.
        assert (b"S'" in data) if proto == 0 else (b'U\x1cThe lady' in data and b'T\x2c\x01\x00\x00' in data)
        write_bytes('refs_p%d.p' % proto, data)
    write_json('refs.expected.json', enc(refs))


def make_misc():
    shared = [1, 2]
    value = {
        'bytes': b'\x00\x01\xfe\xff',
        'long_bytes': bytes(range(256)) * 2,
        'set': {1, 2, 3},
        'frozenset': frozenset({'a'}),
        'empty_set': set(),
        'shared': [shared, shared],
        'long_unicode': u'\u00e9' * 200,
        'tuple': (1, 'two', 3.0),
        'neg': -5,
        'big': 2**100,
        'float': 1.25,
    }

    exp = dict(value)
    exp['bytes'] = Py3Bytes(value['bytes'])
    exp['long_bytes'] = Py3Bytes(value['long_bytes'])
    for proto in (4, 5):
        if proto == 5:
            # bytearray has its own opcode (BYTEARRAY8) only from protocol 5; below that it is a
            # REDUCE of builtins.bytearray, which a no-globals reader must refuse.
            value['bytearray'] = exp['bytearray'] = bytearray(b'abc')
        data = pickle.dumps(value, protocol=proto)
        check_no_globals(data, value)
        write_bytes('misc_p%d.p' % proto, data)
        write_json('misc_p%d.expected.json' % proto, enc(exp))


# ---------------------------------------------------------------------------------------------
# torch / safetensors
def vit_tiny_state_dict():
    """timm VisionTransformer names at toy size: 8x8 image, patch 4, dim 8, 1 block, mlp 16."""
    g = torch.Generator().manual_seed(0)
    D, P, N, H = 8, 4, 4, 16

    def r(*shape):
        return torch.randn(*shape, generator=g)

    sd = collections.OrderedDict()
    sd['cls_token'] = r(1, 1, D)
    sd['pos_embed'] = r(1, N + 1, D)
    sd['patch_embed.proj.weight'] = r(D, 3, P, P)
    sd['patch_embed.proj.bias'] = r(D)
    p = 'blocks.0.'
    sd[p + 'norm1.weight'] = 1 + 0.1 * r(D)
    sd[p + 'norm1.bias'] = r(D)
    sd[p + 'attn.qkv.weight'] = r(3 * D, D)
    sd[p + 'attn.qkv.bias'] = r(3 * D)
    sd[p + 'attn.proj.weight'] = r(D, D)
    sd[p + 'attn.proj.bias'] = r(D)
    sd[p + 'norm2.weight'] = 1 + 0.1 * r(D)
    sd[p + 'norm2.bias'] = r(D)
    sd[p + 'mlp.fc1.weight'] = r(H, D)
    sd[p + 'mlp.fc1.bias'] = r(H)
    sd[p + 'mlp.fc2.weight'] = r(D, H)
    sd[p + 'mlp.fc2.bias'] = r(D)
    sd['norm.weight'] = 1 + 0.1 * r(D)
    sd['norm.bias'] = r(D)
    sd['head.weight'] = r(10, D)
    sd['head.bias'] = r(10)
    return sd


ST_DTYPE = {
    torch.float32: 'F32', torch.float16: 'F16', torch.float64: 'F64', torch.int64: 'I64',
    torch.int32: 'I32', torch.uint8: 'U8', torch.bool: 'BOOL', torch.bfloat16: 'BF16',
}


def tensor_bytes(t):
    t = t.contiguous()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().astype('<i2').tobytes()
    return t.numpy().astype(t.numpy().dtype.newbyteorder('<')).tobytes()


def safetensors_bytes(tensors, metadata=None):
    """The reference layout (see the module docstring)."""
    items = sorted(tensors.items(), key=lambda kv: (-kv[1].element_size(), kv[0]))
    header = {}
    if metadata:
        header['__metadata__'] = metadata
    offset = 0
    chunks = []
    for name, t in items:
        b = tensor_bytes(t)
        header[name] = {'dtype': ST_DTYPE[t.dtype], 'shape': list(t.shape), 'data_offsets': [offset, offset + len(b)]}
        offset += len(b)
        chunks.append(b)
    h = json.dumps(header, separators=(',', ':')).encode('utf-8')
    h += b' ' * ((8 - len(h) % 8) % 8)
    return struct.pack('<Q', len(h)) + h + b''.join(chunks)


def tensor_expected(t):
    """dtype as our DType, shape, values in C order; float16 as raw bits (the reader keeps bits)."""
    t = t.detach().contiguous()
    if t.dtype == torch.float16:
        dtype, values = 'float16', (t.view(torch.int16).to(torch.int32) & 0xFFFF).flatten().tolist()
    elif t.dtype == torch.bfloat16:
        dtype, values = 'float32', t.float().flatten().tolist()  # BF16 is widened to float32
    elif t.dtype == torch.bool:
        dtype, values = 'bool', t.to(torch.uint8).flatten().tolist()
    else:
        dtype = {torch.float32: 'float32', torch.float64: 'float64', torch.int64: 'int64',
                 torch.int32: 'int32', torch.uint8: 'uint8'}[t.dtype]
        values = t.flatten().tolist()
    return {'dtype': dtype, 'shape': list(t.shape), 'values': [enc(v) for v in values]}


def torch_save_bytes(obj, name):
    # torch.save names the archive folder after the file stem when given a path; with a buffer it
    # uses 'archive'. Save to the real path so the fixture looks like a user's checkpoint.
    path = out(name)
    torch.save(obj, path)
    with open(path, 'rb') as f:
        return f.read()


def make_torch_and_safetensors():
    sd = vit_tiny_state_dict()
    torch_save_bytes(sd, 'vit_tiny.pth')
    meta = {'format': 'pt', 'note': 'timm vit toy'}
    write_bytes('vit_tiny.safetensors', safetensors_bytes(sd, meta))
    write_bytes('vit_tiny_f16.safetensors', safetensors_bytes({k: v.half() for k, v in sd.items()}, meta))
    write_json('vit_tiny.expected.json', {k: tensor_expected(v) for k, v in sd.items()})
    write_json('vit_tiny_f16.expected.json', {k: tensor_expected(v.half()) for k, v in sd.items()})

    # Views, offsets, shared storage and every storage type torch.save writes for us.
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    model = collections.OrderedDict()
    model['transposed'] = base.t()  # stride (1, 6): general strides, copied to C order
    model['sliced'] = base[1:3, 2:5]  # storage offset 8, stride (6, 1)
    model['strided'] = base[::2, ::3]  # stride (12, 3)
    model['base'] = base  # the storage all three views share
    model['half'] = torch.tensor([1.0, -2.5, 65504.0, 6e-8, float('inf')], dtype=torch.float16)
    model['double'] = torch.tensor([[1.0 / 3, -1e300]], dtype=torch.float64)
    model['long'] = torch.tensor([0, -1, 2**53 - 1, 2**62, -(2**63)], dtype=torch.int64)
    model['int'] = torch.tensor([7, -(2**31)], dtype=torch.int32)
    model['byte'] = torch.tensor([0, 255, 128], dtype=torch.uint8)
    model['bool'] = torch.tensor([[True, False], [False, True]])
    model['bf16'] = torch.tensor([1.0, -3.140625, 1e30, 0.0], dtype=torch.bfloat16)
    model['param'] = torch.nn.Parameter(torch.tensor([[0.5, 1.5]]))
    model['scalar'] = torch.tensor(3.5)
    model['empty'] = torch.zeros(0, 3)
    ckpt = {'model': model, 'epoch': 3, 'note': 'views'}
    torch_save_bytes(ckpt, 'torch_views.pth')
    write_json('torch_views.expected.json', {k: tensor_expected(v) for k, v in model.items()})

    # Every safetensors dtype, with metadata whose key is special in JS objects.
    dt = collections.OrderedDict()
    dt['f32'] = torch.tensor([[1.5, -2.0, 3.25]], dtype=torch.float32)
    dt['f16'] = torch.tensor([0.1, -65504.0, 6e-8], dtype=torch.float16)
    dt['f64'] = torch.tensor([math.pi], dtype=torch.float64)
    dt['i64'] = torch.tensor([-(2**63), 2**62, 5], dtype=torch.int64)
    dt['i32'] = torch.tensor([-(2**31), 2**31 - 1], dtype=torch.int32)
    dt['u8'] = torch.tensor([[0, 1], [254, 255]], dtype=torch.uint8)
    dt['bool'] = torch.tensor([True, False, True])
    dt['bf16'] = torch.tensor([1.0, -0.5, 3e38], dtype=torch.bfloat16)
    dt['scalar'] = torch.tensor(2.0)
    dt['empty'] = torch.zeros(2, 0)
    write_bytes('dtypes.safetensors', safetensors_bytes(dt, {'__proto__': 'x', 'config': '{"a":1}'}))
    write_json('dtypes.expected.json', {k: tensor_expected(v) for k, v in dt.items()})


# ---------------------------------------------------------------------------------------------
# npz
def npy_expected(a):
    a = a.copy(order='C')  # (np.ascontiguousarray would turn a 0-d array into shape (1,))
    if a.dtype == np.float16:
        dtype, values = 'float16', a.view(np.uint16).flatten().tolist()
    elif a.dtype == np.bool_:
        dtype, values = 'bool', a.astype(np.uint8).flatten().tolist()
    else:
        dtype = {np.dtype('float32'): 'float32', np.dtype('float64'): 'float64', np.dtype('int64'): 'int64',
                 np.dtype('int32'): 'int32', np.dtype('uint8'): 'uint8'}[a.dtype.newbyteorder('=')]
        values = a.flatten().tolist()
    return {'dtype': dtype, 'shape': list(a.shape), 'values': [enc(v) for v in values]}


def zip_write(zf, name, data, compress=zipfile.ZIP_STORED):
    info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
    info.compress_type = compress
    info.external_attr = 0o644 << 16
    zf.writestr(info, data)


def npy_bytes(a, version=None):
    f = io.BytesIO()
    np.lib.format.write_array(f, a, version=version, allow_pickle=False)
    return f.getvalue()


def make_npz():
    rng = np.random.default_rng(0)
    arrays = collections.OrderedDict()
    arrays['f32'] = rng.standard_normal((2, 3)).astype(np.float32)
    arrays['f64'] = rng.standard_normal((3,)).astype(np.float64)
    arrays['i64'] = np.array([[-(2**63), 2**62], [0, -1]], dtype=np.int64)
    arrays['fortran'] = np.asfortranarray(np.arange(12, dtype=np.float32).reshape(3, 4))
    arrays['fortran3d'] = np.asfortranarray(np.arange(24, dtype=np.int32).reshape(2, 3, 4))
    arrays['f16'] = np.array([1.0, -0.5, 65504.0], dtype=np.float16)
    arrays['u8'] = np.array([0, 200, 255], dtype=np.uint8)
    arrays['b'] = np.array([True, False], dtype=np.bool_)
    arrays['scalar'] = np.array(4.5, dtype=np.float64)
    arrays['big_endian'] = np.array([1.5, -2.0], dtype='>f4')
    # Written through zipfile (not np.savez) for a fixed timestamp; same layout as np.savez.
    for name, compress in (('arrays.npz', zipfile.ZIP_STORED), ('arrays_compressed.npz', zipfile.ZIP_DEFLATED)):
        with zipfile.ZipFile(out(name), 'w') as zf:
            for k, a in arrays.items():
                zip_write(zf, k + '.npy', npy_bytes(a), compress)
    assert np.load(out('arrays.npz'))['fortran'].flags.f_contiguous
    write_json('arrays.expected.json', {k: npy_expected(a) for k, a in arrays.items()})

    with zipfile.ZipFile(out('npy_versions.npz'), 'w') as zf:
        v = np.arange(6, dtype=np.float32).reshape(2, 3)
        for ver in ((1, 0), (2, 0), (3, 0)):
            zip_write(zf, 'v%d.npy' % ver[0], npy_bytes(v, ver))
    write_json('npy_versions.expected.json', {'v%d' % i: npy_expected(np.arange(6, dtype=np.float32).reshape(2, 3)) for i in (1, 2, 3)})

    with zipfile.ZipFile(out('object_array.npz'), 'w') as zf:
        f = io.BytesIO()
        np.lib.format.write_array(f, np.array([{'a': 1}, None], dtype=object), allow_pickle=True)
        zip_write(zf, 'obj.npy', f.getvalue())


# ---------------------------------------------------------------------------------------------
# hostile files
class Evil:
    def __reduce__(self):
        return (os.system, ('echo pwned',))


def make_hostile():
    # GLOBAL 'posix system' (os.system's real module on Linux) + REDUCE, as attacks do.
    write_bytes('evil_global_reduce_p2.p', pickle.dumps([1, Evil()], protocol=2))
    # Protocol 4 names the callable with STACK_GLOBAL instead.
    write_bytes('evil_stack_global_p4.p', pickle.dumps({'x': Evil()}, protocol=4))
    # INST (protocol 0 old-style instance creation), which Python 3 no longer writes: by hand.
    write_bytes('evil_inst_p0.p', b"(S'echo pwned'\nios\nsystem\np0\n.")
    # REDUCE with no global at all: a list "called" with a tuple.
    write_bytes('evil_reduce_p2.p', b'\x80\x02]q\x00)R.')

    with zipfile.ZipFile(out('evil_dotdot.zip'), 'w') as zf:
        zip_write(zf, 'ok.txt', b'fine')
        zip_write(zf, '../evil', b'escaped')
    with zipfile.ZipFile(out('evil_absolute.zip'), 'w') as zf:
        zip_write(zf, '/etc/evil', b'absolute')
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # zipfile warns about the duplicate; that is the point
        with zipfile.ZipFile(out('evil_dup.zip'), 'w') as zf:
            zip_write(zf, 'data.pkl', b'first')
            zip_write(zf, 'data.pkl', b'second')

    # A valid header whose single tensor claims bytes past the end of the file.
    h = json.dumps({'w': {'dtype': 'F32', 'shape': [1000], 'data_offsets': [0, 4000]}}, separators=(',', ':')).encode()
    h += b' ' * ((8 - len(h) % 8) % 8)
    write_bytes('past_end.safetensors', struct.pack('<Q', len(h)) + h + b'\x00' * 16)


def main():
    os.makedirs(ROOT, exist_ok=True)
    make_refs()
    make_misc()
    make_torch_and_safetensors()
    make_npz()
    make_hostile()
    total = sum(os.path.getsize(out(f)) for f in os.listdir(ROOT))
    print('wrote %d files, %d bytes, torch %s numpy %s' % (len(os.listdir(ROOT)), total, torch.__version__, np.__version__))


if __name__ == '__main__':
    sys.exit(main())
