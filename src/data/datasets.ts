// The dataset names the CLI accepts (`--dataset`) and what each implies: the default splitBy of its
// refs file (spec/data.md §1), where its images live under the dataset root, and which paper
// Table 2 length buckets its evaluation uses (data.md §5), and which on-disk layout it has: the
// refer layout (data.md §1, src/data/refer.ts) or ReferIt as the ReSTR pipeline releases it
// (data.md §2, src/data/referit.ts). Synthetic flavors take splitBy and the image folder from the
// generator itself (src/data/synth/generate.ts) so the two cannot drift.

import { FLAVOR_SPECS, IMAGE_ROOT, type Flavor } from './synth/generate.js';

export const DATASET_NAMES = [
  'refcoco',
  'refcoco+',
  'refcocog',
  'refclef',
  'referit',
  'synth-refcoco',
  'synth-refcoco+',
  'synth-refcocog',
] as const;
export type DatasetName = (typeof DATASET_NAMES)[number];

/** Which real dataset's expression-length buckets apply (synthetic flavors use their counterpart's). */
export type LengthFamily = 'refcoco' | 'refcocog' | 'referit';

/** `refer`: instances.json + refs(<splitBy>).json|.p; `referit`: .mat masks + query JSON files. */
export type DatasetLayout = 'refer' | 'referit';

export interface DatasetInfo {
  name: DatasetName;
  layout: DatasetLayout;
  /** splitBy used when none is given: refs(<splitBy>).json / .p ('' for ReferIt, which has none). */
  defaultSplitBy: string;
  /** Image folder relative to the dataset root (the refer API's IMAGE_DIR). */
  imageDir: string;
  lengthFamily: LengthFamily;
}

const COCO_IMAGES = 'images/mscoco/images/train2014';

function synth(name: Flavor, lengthFamily: LengthFamily): DatasetInfo {
  return {
    name,
    layout: 'refer',
    defaultSplitBy: FLAVOR_SPECS[name].splitBy,
    imageDir: `${IMAGE_ROOT}/${name}`,
    lengthFamily,
  };
}

export const DATASETS: Record<DatasetName, DatasetInfo> = {
  refcoco: {
    name: 'refcoco',
    layout: 'refer',
    defaultSplitBy: 'unc',
    imageDir: COCO_IMAGES,
    lengthFamily: 'refcoco',
  },
  'refcoco+': {
    name: 'refcoco+',
    layout: 'refer',
    defaultSplitBy: 'unc',
    imageDir: COCO_IMAGES,
    lengthFamily: 'refcoco',
  },
  refcocog: {
    name: 'refcocog',
    layout: 'refer',
    defaultSplitBy: 'umd',
    imageDir: COCO_IMAGES,
    lengthFamily: 'refcocog',
  },
  refclef: {
    name: 'refclef',
    layout: 'refer',
    defaultSplitBy: 'unc',
    imageDir: 'images/saiapr_tc-12',
    lengthFamily: 'referit',
  },
  // Splits are the referit_query_<split>.json files present (trainval, test); no splitBy.
  referit: {
    name: 'referit',
    layout: 'referit',
    defaultSplitBy: '',
    imageDir: 'referit/images',
    lengthFamily: 'referit',
  },
  'synth-refcoco': synth('synth-refcoco', 'refcoco'),
  'synth-refcoco+': synth('synth-refcoco+', 'refcoco'),
  'synth-refcocog': synth('synth-refcocog', 'refcocog'),
};

export function isDatasetName(s: string): s is DatasetName {
  return (DATASET_NAMES as readonly string[]).includes(s);
}

export function datasetInfo(name: string): DatasetInfo {
  if (!isDatasetName(name)) throw new Error(`unknown dataset '${name}' (known: ${DATASET_NAMES.join(', ')})`);
  return DATASETS[name];
}
