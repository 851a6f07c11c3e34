// Learning-rate schedules. ReSTR (spec/restr.md §5): linear warm-up over the first 10% of
// iterations, then polynomial decay (power 0.9) to 0. Shared-RIS (spec/shared-ris.md §2): cosine.

export const SCHEDULE_KINDS = ['poly', 'cosine', 'constant'] as const;
export type ScheduleKind = (typeof SCHEDULE_KINDS)[number];

export interface Schedule {
  kind: ScheduleKind;
  baseLr: number;
  totalSteps: number;
  /** Warm-up steps (linear from 0). */
  warmupSteps: number;
  /** Polynomial power (poly only). */
  power?: number;
}

/** Learning rate for the update with 0-based index `step` (of `totalSteps`). */
export function learningRate(s: Schedule, step: number): number {
  if (step < s.warmupSteps) return (s.baseLr * (step + 1)) / s.warmupSteps;
  const span = Math.max(1, s.totalSteps - s.warmupSteps);
  const p = Math.min(1, (step - s.warmupSteps) / span);
  switch (s.kind) {
    case 'constant':
      return s.baseLr;
    case 'poly':
      return s.baseLr * Math.pow(1 - p, s.power ?? 0.9);
    case 'cosine':
      return 0.5 * s.baseLr * (1 + Math.cos(Math.PI * p));
  }
}
