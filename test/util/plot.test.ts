import { test } from 'node:test';
import assert from 'node:assert/strict';
import { legendBox, lineChartSvg } from '../../src/util/plot.js';

const area = { x0: 70, x1: 700, y0: 40, y1: 370 };
const names = ['val oIoU (%)', 'val pointing (%)']; // a box 38 + 7·16 = 150 px wide

test('legendBox: top right when nothing is drawn there', () => {
  const low: [number, number][] = [
    [70, 360],
    [700, 300],
  ];
  const b = legendBox([low], names, area);
  assert.equal(b.corner, 'top right');
  assert.deepEqual([b.x, b.y, b.w, b.h], [700 - 150 - 5, 45, 150, 40]); // 38 + 7·16 wide, 8 + 16·2 high
});

test('legendBox: avoids a line that crosses the top right, also between its points', () => {
  // a rising curve ending in the top-right corner (a validation curve), points far apart
  const rising: [number, number][] = [
    [70, 300],
    [400, 120],
    [700, 50],
  ];
  assert.equal(legendBox([rising], names, area).corner, 'bottom right');
  // a segment passing through the top-right box with no point inside it
  const through: [number, number][] = [
    [500, 40],
    [700, 100],
  ];
  assert.equal(legendBox([through], names.slice(1), area).corner, 'bottom right');
  // lines in both right corners: the left ones are free
  assert.equal(
    legendBox(
      [
        [
          [500, 50],
          [700, 60],
        ],
        [
          [500, 360],
          [700, 355],
        ],
      ],
      names,
      area,
    ).corner,
    'top left',
  );
});

test('lineChartSvg: the legend is drawn where legendBox puts it, names escaped', () => {
  const svg = lineChartSvg(
    [
      {
        name: 'val <oIoU>',
        points: [
          [0, 0],
          [10, 100],
        ],
      },
    ],
    { title: 't', xLabel: 'x', yLabel: 'y' },
  );
  assert.match(svg, /val &lt;oIoU&gt;/);
  // the line rises to the top right, so the legend's box sits at the bottom right of the plot
  const rect = /<rect x="([\d.]+)" y="([\d.]+)" width="108"/.exec(svg); // 38 + 7·10
  assert.ok(rect, 'legend box drawn');
  assert.equal(Number(rect[1]), 720 - 20 - 108 - 5);
  assert.ok(Number(rect[2]) > 420 / 2, `legend at y=${rect[2]} should be in the lower half`);
});
