// npm run torture: the full power-cut torture (every persistent write of the life cycle, double cuts on a
// sample) for every transport on both engines; prints the table and exits non-zero on any violation.
// `npm run torture -- --transport http-patch` (repeatable) runs only the transports named: the results file
// keeps the other transports' rows from their last run.

import * as fs from "node:fs";
import { parseArgs } from "node:util";
import { torture, tortureTable, type TortureOptions, type TortureRun, type TortureSummary, type TortureTransport } from "../host-sim/torture";

const transports: TortureTransport[] = ["http", "mqtt", "http-patch", "coap-patch", "mqtt-patch"];
const { values } = parseArgs({ options: { transport: { type: "string", multiple: true } } });
const chosen = (values.transport ?? transports) as TortureTransport[];
for (const name of chosen) if (!transports.includes(name)) throw new Error(`unknown transport ${name} (${transports.join(", ")})`);

const fixture = (name: string) => new Uint8Array(fs.readFileSync(new URL(`../test/fixtures/delta/${name}`, import.meta.url)));
/** The patched update: detools' heatshrink patch in esp_delta_ota framing, from the factory image to new.bin (256 KiB). */
const patch = { bytes: fixture("esp-delta-ota.patch"), image: fixture("new.bin") };

const summaries: TortureSummary[] = [];
for (const transport of chosen) {
	for (const engine of ["node", "xs"] as const) {
		process.stderr.write(`torture over ${transport} on ${engine}…\n`);
		let runs = 0;
		// Progress for a long run's log: every 50th cut, and at once any that broke an invariant.
		const onRun = (run: TortureRun) => {
			if (++runs % 50 === 0 || run.violations.length) process.stderr.write(`  ${runs} cuts done${run.violations.length ? `; cut ${run.cuts.join("+")}: ${run.violations.join("; ")}` : ""}\n`);
		};
		const options: TortureOptions = { engine, transport, imageBytes: 128 * 1024 + 1000, checkpointBytes: 16384, stride: 1, doubleCutEvery: 4, maxBoots: 6, seed: 2026, onRun };
		summaries.push(await torture(transport.endsWith("-patch") ? { ...options, patch } : options));
	}
}
const table = tortureTable(summaries);
console.log(table);
for (const summary of summaries) for (const violation of summary.violations) console.log(`VIOLATION ${summary.engine}: ${violation}`);
const results = new URL("./torture-results.md", import.meta.url);
const kept = fs.existsSync(results) ? fs.readFileSync(results, "utf8").split("\n").filter((line) => {
	const transport = /^\| ([a-z-]+) \| (node|xs) \|/.exec(line)?.[1];
	return transport !== undefined && !chosen.includes(transport as TortureTransport);
}) : [];
const rows = table.split("\n");
const ordered = [...kept, ...rows.slice(2)].sort((a, b) => transports.indexOf(a.split(" | ")[0].slice(2) as TortureTransport) - transports.indexOf(b.split(" | ")[0].slice(2) as TortureTransport));
fs.writeFileSync(results, `${[...rows.slice(0, 2), ...ordered].join("\n")}\n`);
process.exitCode = summaries.some((summary) => summary.violations.length) ? 1 : 0;
