// `refseg data` (src/cli/data.ts): subcommand dispatch, flag errors that name the flag, help,
// and a small `synth` run whose summary and progress lines reach the user.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runDataCli as run } from './run-data-cli.js';

test('unknown or missing subcommand: exit 2 and the known ones listed', async (t) => {
  const r = await run(t, 'sinth');
  assert.equal(r.code, 2);
  assert.match(r.err, /unknown subcommand 'sinth' \(known: synth, check, stats\)/);
  const m = await run(t);
  assert.equal(m.code, 2);
  assert.match(m.err, /missing subcommand[\s\S]*synth/);
  const h = await run(t, '--help');
  assert.equal(h.code, 0);
  assert.match(h.out, /Usage: refseg data <subcommand>[\s\S]*synth/);
});

test('synth --help documents every flag and flavor', async (t) => {
  const r = await run(t, 'synth', '--help');
  assert.equal(r.code, 0);
  for (const s of [
    '--flavor',
    '--out',
    '--images',
    '--size',
    '--seed',
    '--force',
    'synth-refcoco+',
    'synth-refcocog',
  ]) {
    assert.ok(r.out.includes(s), `help lacks ${s}`);
  }
});

test('bad flags: exit 2 with a message naming the flag', async (t) => {
  const cases: [string[], RegExp][] = [
    [['--flavor', 'synth-refcoco', '--out', 'x', '--imgs', '3'], /unknown option '--imgs'/],
    [['--out', 'x'], /--flavor is required/],
    [
      ['--flavor', 'refcoco', '--out', 'x'],
      /--flavor 'refcoco' is not one of synth-refcoco, synth-refcoco\+, synth-refcocog/,
    ],
    [['--flavor', 'synth-refcoco'], /--out is required/],
    [['--flavor', 'synth-refcoco', '--out'], /option '--out' needs a value/],
    [['--flavor', 'synth-refcoco', '--out', 'x', '--images', '3x'], /--images must be an integer, got '3x'/],
    [['--flavor', 'synth-refcoco', '--out', 'x', '--images', '0'], /--images must be in \[1, /],
    [['--flavor', 'synth-refcoco', '--out', 'x', '--size', '32'], /--size must be in \[64, 2048\], got 32/],
    [
      ['--flavor', 'synth-refcoco', '--out', 'x', '--seed', '-1'],
      /option '--seed' needs a value \(for a value starting with '-', write --seed=VALUE\)/,
    ],
    [['--flavor', 'synth-refcoco', '--out', 'x', '--seed=-1'], /--seed must be an integer, got '-1'/],
    [['--flavor', 'synth-refcoco', '--out', 'x', '--force=yes'], /option '--force' takes no value/],
    [['--flavor', 'synth-refcoco', '--out', 'x', 'extra'], /unexpected argument 'extra'/],
  ];
  for (const [argv, re] of cases) {
    const r = await run(t, 'synth', ...argv);
    assert.equal(r.code, 2, argv.join(' '));
    assert.match(r.err, re);
    assert.match(r.err, /^refseg data synth: /);
  }
});

test('synth writes a dataset, prints a per-split summary and a final progress line; a rerun needs --force', async (t) => {
  const out = await mkdtemp(join(tmpdir(), 'refseg-cli-data-'));
  try {
    const r = await run(
      t,
      'synth',
      '--flavor',
      'synth-refcocog',
      '--out',
      out,
      '--images',
      '12',
      '--size',
      '96',
      '--seed',
      '5',
    );
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /synth-refcocog \(splitBy umd, 96×96, seed 5\)/);
    assert.match(r.out, /^train\s+\d+\s+\d+\s+\d+$/m);
    assert.match(r.out, /^total\s+12\s+\d+\s+\d+$/m);
    assert.match(r.err, /synth-refcocog 12\/12 in /); // stderr is not a TTY here: one final line
    assert.equal((await readdir(join(out, 'images/synth/synth-refcocog'))).length, 12);
    assert.deepEqual((await readdir(join(out, 'synth-refcocog'))).sort(), [
      'instances.json',
      'refs(umd).json',
    ]);
    const again = await run(
      t,
      'synth',
      '--flavor',
      'synth-refcocog',
      '--out',
      out,
      '--images',
      '2',
      '--size',
      '96',
    );
    assert.equal(again.code, 1);
    assert.match(again.err, /already holds a dataset; pass --force/);
    const forced = await run(
      t,
      'synth',
      '--flavor',
      'synth-refcocog',
      '--out',
      out,
      '--images',
      '2',
      '--size',
      '96',
      '--force',
    );
    assert.equal(forced.code, 0, forced.err);
    assert.equal((await readdir(join(out, 'images/synth/synth-refcocog'))).length, 2);
  } finally {
    await rm(out, { recursive: true, force: true });
  }
});
