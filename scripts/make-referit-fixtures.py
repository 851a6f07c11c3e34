#!/usr/bin/python3
"""Writes test/fixtures/referit/: a tiny dataset in the ReferIt layout (spec/data.md §2) and
MAT-files exercising src/io/mat.ts, each with the values scipy reads from it.

Run with Debian's interpreter, which has python3-scipy, python3-numpy and python3-pil:

    /usr/bin/python3 scripts/make-referit-fixtures.py

(the `python3` first on PATH may be a pyenv build without them). The output is deterministic:
seeded pixels, and scipy's header text ("Created on: <time>") pinned to a fixed date, so a re-run
leaves git clean unless this script changed.

Layout written (the dataset root is test/fixtures/referit):

    referit/images/<img>.jpg               three small JPEGs
    referit/mask/<img>_<ann>.mat           one mask per object; foreground is segimg_t == 0
    referit_query_trainval.json            "<img>_<ann>" -> list of sentences
    referit_query_test.json
    expected.json                          per mask: size and foreground rows, as scipy loads them;
                                           per split: objects and sentences

The masks cover the ways a .mat reaches us:
- 1001_1.mat: scipy.io.savemat(do_compression=True), uint8 (what MATLAB -v7 writes: miCOMPRESSED).
- 1001_2.mat: scipy.io.savemat uncompressed, uint8.
- 1002_1.mat: BIG-endian, built here with struct because scipy only writes the machine's byte
  order; class double stored as miUINT8 (MATLAB narrows the storage type of integer-valued
  doubles), plus a second variable whose name and data are small data elements.
- 2040_1.mat: compressed, double, next to other variables (a struct array with char and cell
  fields): the loader must pick segimg_t out of several.
- 2040_3.mat: compressed, int32 labels {0, 1, 7}: only 0 is foreground.

formats/: files for the reader's own tests (test/io/mat.test.ts):
- classes.mat / classes_z.mat: every numeric class, logical, complex, 3-D, empty, char (one and
  several rows), cell and nested struct arrays; uncompressed and compressed.
- classes.expected.json: those variables as scipy.io.loadmat(mat_dtype=True) returns them, in the
  encoding of `enc()` below (row-major values).
- big_endian.mat: the same kind of content hand-built big-endian; big_endian.expected.json.
"""

import json
import os
import struct
import types
import warnings

import numpy as np
import scipy.io
import scipy.io.matlab._mio5 as mio5
from PIL import Image

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'referit')
FIXED_TIME = 'Wed Jan  1 00:00:00 2020'
# scipy writes time.asctime() into the header text; pin it so the files are reproducible.
mio5.time = types.SimpleNamespace(asctime=lambda: FIXED_TIME)


def path(*parts):
    p = os.path.join(ROOT, *parts)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    return p


def write_json(name, value):
    with open(path(name), 'w') as f:
        json.dump(value, f, indent=1, ensure_ascii=False, allow_nan=False)
        f.write('\n')


# ---------------------------------------------------------------------------------------------
# A big-endian Level-5 writer (scipy has none). Element layout as in src/io/mat.ts's comment.
miINT8, miUINT8, miINT16, miUINT16, miINT32, miUINT32, miSINGLE, miDOUBLE = 1, 2, 3, 4, 5, 6, 7, 9
miMATRIX = 14
mxCELL, mxSTRUCT, mxCHAR, mxDOUBLE, mxSINGLE, mxUINT8, mxINT16 = 1, 2, 4, 6, 7, 9, 10


def be_element(mtype, data):
    """Tag + data, padded to 8 bytes; a small data element when data fit in 4 bytes."""
    n = len(data)
    if n <= 4:
        return struct.pack('>HH', n, mtype) + data + b'\0' * (4 - n)
    return struct.pack('>II', mtype, n) + data + b'\0' * ((8 - n % 8) % 8)


def be_matrix(name, mclass, dims, body, flags=0):
    """An miMATRIX: array flags, dims, name, then `body` (already encoded sub-elements)."""
    sub = (be_element(miUINT32, struct.pack('>II', mclass | (flags << 8), 0))
           + be_element(miINT32, struct.pack('>%di' % len(dims), *dims))
           + be_element(miINT8, name.encode('latin1'))
           + body)
    return struct.pack('>II', miMATRIX, len(sub)) + sub


def be_file(matrices):
    text = ('MATLAB 5.0 MAT-file, written big-endian by make-referit-fixtures.py, Created on: '
            + FIXED_TIME).encode('latin1')
    header = text.ljust(116, b' ') + b'\0' * 8 + struct.pack('>H', 0x0100) + b'MI'
    return header + b''.join(matrices)


def fortran_bytes(arr, fmt):
    """Column-major element bytes of `arr` in big-endian struct format `fmt`."""
    flat = np.asarray(arr).flatten(order='F').tolist()
    return struct.pack('>%d%s' % (len(flat), fmt), *flat)


# ---------------------------------------------------------------------------------------------
# Expected values: what scipy.io.loadmat(mat_dtype=True, chars_as_strings=False) returns, as JSON.
def enc(v):
    if isinstance(v, np.ndarray) and v.dtype.names:  # struct array
        return {'kind': 'struct', 'dims': list(v.shape), 'fields': list(v.dtype.names),
                'elements': [{f: enc(el[f]) for f in v.dtype.names} for el in v.flatten()]}
    if isinstance(v, np.ndarray) and v.dtype.kind == 'O':  # cell array
        return {'kind': 'cell', 'dims': list(v.shape), 'cells': [enc(x) for x in v.flatten()]}
    if isinstance(v, np.ndarray) and v.dtype.kind == 'U':  # char array, one char per element
        rows = [''.join(r) for r in v.reshape(v.shape[0], -1)] if v.ndim else [str(v)]
        return {'kind': 'char', 'dims': list(v.shape), 'rows': rows}
    v = np.asarray(v)

    def num(x):
        if v.dtype.kind in 'iu' and v.dtype.itemsize == 8:
            return str(int(x))  # int64/uint64: exact, as text
        if v.dtype.kind == 'b':
            return int(x)
        return x.item()

    out = {'kind': 'numeric', 'dtype': v.dtype.name, 'dims': list(v.shape),
           'values': [num(x) for x in np.real(v).flatten()]}
    if v.dtype.kind == 'c':
        out['dtype'] = {'complex128': 'float64', 'complex64': 'float32'}[v.dtype.name]
        out['imag'] = [x.item() for x in np.imag(v).flatten()]
    return out


def load(p, **kw):
    """loadmat with MATLAB's classes (mat_dtype=True: a double stored as miUINT8 comes back double).

    mat_dtype=True drops the imaginary part of complex arrays (scipy casts them to the real class
    dtype), so complex variables are taken from a plain load, whose dtype is the storage one.
    """
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', np.ComplexWarning)
        as_class = scipy.io.loadmat(p, mat_dtype=True, chars_as_strings=False, **kw)
    plain = scipy.io.loadmat(p, chars_as_strings=False, **kw)
    return {k: plain[k] if np.iscomplexobj(plain[k]) else v for k, v in as_class.items()}


def expected_vars(p, **kw):
    return {k: enc(v) for k, v in load(p, **kw).items() if not k.startswith('__')}


# ---------------------------------------------------------------------------------------------
def rng_image(seed, w, h):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def ellipse(h, w, cy, cx, ry, rx):
    y, x = np.mgrid[0:h, 0:w]
    return ((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2 <= 1


def write_dataset():
    images = {'1001': (24, 16), '1002': (20, 12), '2040': (16, 16)}  # name: (width, height)
    for k, (name, (w, h)) in enumerate(sorted(images.items())):
        Image.fromarray(rng_image(k, w, h)).save(path('referit', 'images', name + '.jpg'), quality=95)

    def seg(shape, fg, background=1, dtype=np.uint8):
        """segimg_t: 0 on the object, `background` elsewhere."""
        s = np.full(shape, background, dtype=dtype)
        s[fg] = 0
        return s

    mask_dir = ('referit', 'mask')
    # 1001_1: compressed uint8 (an ellipse, background 255).
    m = seg((16, 24), ellipse(16, 24, 7, 9, 5, 7), background=255)
    scipy.io.savemat(path(*mask_dir, '1001_1.mat'), {'segimg_t': m}, do_compression=True)
    # 1001_2: uncompressed uint8 (the top rows: "sky").
    fg = np.zeros((16, 24), bool)
    fg[:5, :] = True
    fg[5, 3:20] = True
    scipy.io.savemat(path(*mask_dir, '1001_2.mat'), {'segimg_t': seg((16, 24), fg)})
    # 1002_1: big-endian, class double stored as miUINT8, plus a small-element variable.
    fg = np.zeros((12, 20), bool)
    fg[1:6, 12:19] = True
    fg[6, 15] = True
    s = seg((12, 20), fg, background=3)  # integer values, saved as class double
    with open(path(*mask_dir, '1002_1.mat'), 'wb') as f:
        f.write(be_file([
            be_matrix('segimg_t', mxDOUBLE, [12, 20], be_element(miUINT8, fortran_bytes(s, 'B'))),
            be_matrix('ab', mxINT16, [1, 2], be_element(miINT16, struct.pack('>2h', -2, 300))),
        ]))
    # 2040_1: compressed double, among other variables.
    fg = ellipse(16, 16, 11, 4, 4, 3)
    info = np.zeros((1, 2), dtype=[('name', 'O'), ('box', 'O'), ('tags', 'O')])
    info[0, 0] = ('left thing', np.array([[1.0, 2.0, 3.0, 4.0]]), np.array([['a', 'bc']], dtype=object))
    info[0, 1] = ('', np.zeros((0, 0)), np.zeros((0, 0), dtype=object))
    scipy.io.savemat(path(*mask_dir, '2040_1.mat'),
                     {'info': info, 'segimg_t': seg((16, 16), fg, dtype=np.float64), 'version': 'v1'},
                     do_compression=True)
    # 2040_3: compressed int32 labels; only 0 is the object.
    labels = np.full((16, 16), 7, np.int32)
    labels[2:9, 2:9] = 1
    labels[9:13, 10:14] = 0
    scipy.io.savemat(path(*mask_dir, '2040_3.mat'), {'segimg_t': labels}, do_compression=True)

    queries = {
        'trainval': {
            '1001_1': ['man on left', 'the guy in red'],
            '1001_2': ['sky'],
            '1002_1': ['tree top right corner of the picture', 'ünïcode café'],
        },
        'test': {
            '2040_1': ['any', 'left side bottom'],
            '2040_3': ['the small square in the middle of the picture on the right'],
        },
    }
    for split, q in queries.items():
        write_json('referit_query_%s.json' % split, q)

    # What scipy reads: each mask's foreground (segimg_t == 0) as rows of '0'/'1', and the MATLAB
    # class of segimg_t as a numpy dtype.
    masks = {}
    for split in queries.values():
        for key in split:
            t = load(path(*mask_dir, key + '.mat'))['segimg_t']
            fgm = t == 0
            masks[key] = {'height': int(t.shape[0]), 'width': int(t.shape[1]), 'dtype': t.dtype.name,
                          'rows': [''.join('1' if x else '0' for x in r) for r in fgm]}
            w, h = images[key.split('_')[0]]
            assert (h, w) == t.shape, (key, t.shape)
    assert masks['1002_1']['rows'][6][15] == '1'
    write_json('expected.json', {
        'masks': masks,
        'splits': {s: {'objects': len(q), 'sentences': sum(len(v) for v in q.values())}
                   for s, q in queries.items()},
    })


def write_formats():
    rng = np.random.default_rng(7)
    v = {
        'd': rng.normal(size=(3, 4)),
        's': rng.normal(size=(2, 3)).astype(np.float32),
        'i8': np.array([[-128, -1, 0, 127]], np.int8),
        'u8': np.arange(12, dtype=np.uint8).reshape(3, 4),
        'i16': np.array([[-32768], [5], [32767]], np.int16),
        'u16': np.array([[0, 65535]], np.uint16),
        'i32': np.arange(-6, 6, dtype=np.int32).reshape(2, 3, 2),
        'u32': np.array([[4294967295, 1]], np.uint32),
        'i64': np.array([[-(2 ** 62) - 3, 2 ** 53 + 1]], np.int64),
        'u64': np.array([[2 ** 64 - 1, 0]], np.uint64),
        'logic': np.array([[True, False, True], [False, False, True]]),
        'z': np.array([[1 + 2j, -3.5 - 0.25j]]),
        'cube': np.arange(24, dtype=np.float64).reshape(2, 3, 4),
        'empty': np.zeros((0, 3)),
        'str': 'hello',
        'lines': np.array(['abc', 'xyz'], dtype='U3'),
        'cel': np.array([[np.array([[1.0]]), 'two'], [np.arange(3, dtype=np.uint8), np.zeros((0, 0))]],
                        dtype=object),
    }
    inner = np.zeros((1, 1), dtype=[('leaf', 'O')])
    inner[0, 0] = (np.array([[42]], np.int16),)
    st = np.zeros((2, 1), dtype=[('a', 'O'), ('nested', 'O')])
    st[0, 0] = (np.array([[1.5]]), inner)
    st[1, 0] = ('text', np.zeros((0, 0)))
    v['st'] = st
    scipy.io.savemat(path('formats', 'classes.mat'), v)
    scipy.io.savemat(path('formats', 'classes_z.mat'), v, do_compression=True)
    exp = expected_vars(path('formats', 'classes.mat'))
    assert exp == expected_vars(path('formats', 'classes_z.mat'))
    write_json(os.path.join('formats', 'classes.expected.json'), exp)

    # Big-endian: single stored as miSINGLE, a 3-D int16 stored as miINT8 (narrowed), a char row
    # (miUINT16 code units, as MATLAB writes them), a logical, and a 1x2 cell.
    sgl = rng.normal(size=(2, 2)).astype(np.float32)
    cube = np.arange(-6, 6, dtype=np.int16).reshape(2, 3, 2)
    cell_body = (be_matrix('', mxDOUBLE, [1, 1], be_element(miDOUBLE, struct.pack('>d', 2.5)))
                 + be_matrix('', mxCHAR, [1, 2], be_element(miUINT16, struct.pack('>2H', 0x68, 0xe9))))
    data = be_file([
        be_matrix('single_2x2', mxSINGLE, [2, 2], be_element(miSINGLE, fortran_bytes(sgl, 'f'))),
        be_matrix('cube', mxINT16, [2, 3, 2], be_element(miINT8, fortran_bytes(cube, 'b'))),
        be_matrix('word', mxCHAR, [1, 4], be_element(miUINT16, struct.pack('>4H', *map(ord, 'Ünï!')))),
        be_matrix('flag', mxUINT8, [1, 3], be_element(miUINT8, bytes([1, 0, 1])), flags=0x02),
        be_matrix('c', mxCELL, [1, 2], cell_body),
    ])
    with open(path('formats', 'big_endian.mat'), 'wb') as f:
        f.write(data)
    # scipy's default uint16_codec keeps only the low byte of each code unit; MATLAB's chars are
    # UTF-16 code units, in this file big-endian.
    be = {'uint16_codec': 'utf_16_be'}
    loaded = load(path('formats', 'big_endian.mat'), **be)
    assert np.array_equal(loaded['cube'], cube) and np.array_equal(loaded['single_2x2'], sgl)
    assert ''.join(loaded['word'][0]) == 'Ünï!'
    write_json(os.path.join('formats', 'big_endian.expected.json'),
               expected_vars(path('formats', 'big_endian.mat'), **be))


if __name__ == '__main__':
    write_dataset()
    write_formats()
    print('wrote', os.path.normpath(ROOT))
