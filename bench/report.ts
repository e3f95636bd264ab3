// Writes bench/results/README.md: the latest figure of every bench (bench/results/*.json) beside
// its goal and KubeVirt's, with the pictures. `make bench` runs it last; it only reads results.
//   node --import tsx bench/report.ts
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { benchDir, markdownTable, readResults, resultsDir } from './support/results.js';

const PICTURES: Record<string, Array<[string, string]>> = {
  'vm-startup': [
    ['vm-startup-latency.svg', 'creation → VMI Running, each VM a dot'],
    ['vm-startup-timeline.svg', 'one VM alone: where each millisecond goes'],
    ['vm-startup-timeline-burst.svg', 'the median VM of the back-to-back burst'],
  ],
  'control-plane-scale': [['control-plane-scale.svg', 'controller heap and RSS against the number of VMs, beside KubeVirt’s']],
  'launcher-memory': [['launcher-memory.svg', 'launcher overhead per VM against KubeVirt’s request']],
};

const sections = readResults().map((result) => {
  const pictures = (PICTURES[result.bench] ?? []).filter(([file]) => existsSync(path.join(benchDir, file)));
  const conditions = Object.entries(result.conditions)
    .map(([key, value]) => `${key}: ${typeof value === 'string' ? value : JSON.stringify(value)}`)
    .join('; ');
  return [
    `## ${result.bench}`,
    '',
    `${result.date.slice(0, 16).replace('T', ' ')} UTC, commit \`${result.commit.slice(0, 12)}\`, \`${result.command}\` ([JSON](${result.bench}.json); notes on this run and earlier ones: [${result.bench}.md](../${result.bench}.md))`,
    '',
    `Conditions: ${conditions}.`,
    '',
    markdownTable(result),
    '',
    ...pictures.flatMap(([file, caption]) => [`![${caption}](../${file})`, '', `*${caption}*`, '']),
  ].join('\n');
});

writeFileSync(
  path.join(resultsDir, 'README.md'),
  [
    '# Latest bench results',
    '',
    'Written by `make bench` (bench/report.ts) from the JSON files beside it; what each bench measures',
    'and how is in its source and in `bench/*.md`. KubeVirt’s figures come from its own jobs on real',
    'clusters with KVM (sources linked); kubevm’s from the conditions stated, usually this 2-core machine',
    'under software emulation (TCG). A goal marked **NO** is missed; its note says where the time or',
    'memory goes.',
    '',
    ...sections,
  ].join('\n'),
);
console.log(`wrote ${path.join(resultsDir, 'README.md')}`);
