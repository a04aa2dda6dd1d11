// npm run torture: the full power-cut torture (every persistent write of the life cycle, double cuts on a
// sample) for both transports on both engines; prints the table and exits non-zero on any violation.

import * as fs from "node:fs";
import { torture, tortureTable, type TortureSummary } from "../host-sim/torture";

const summaries: TortureSummary[] = [];
for (const transport of ["http", "mqtt"] as const) {
	for (const engine of ["node", "xs"] as const) {
		process.stderr.write(`torture over ${transport} on ${engine}…\n`);
		summaries.push(await torture({ engine, transport, imageBytes: 128 * 1024 + 1000, checkpointBytes: 16384, stride: 1, doubleCutEvery: 4, maxBoots: 6, seed: 2026 }));
	}
}
const table = tortureTable(summaries);
console.log(table);
for (const summary of summaries) for (const violation of summary.violations) console.log(`VIOLATION ${summary.engine}: ${violation}`);
fs.writeFileSync(new URL("./torture-results.md", import.meta.url), `${table}\n`);
process.exitCode = summaries.some((summary) => summary.violations.length) ? 1 : 0;
