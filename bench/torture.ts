// npm run torture: the full power-cut torture (every persistent write of the life cycle, double cuts on a
// sample) for every transport on both engines; prints the table and exits non-zero on any violation.
// `npm run torture -- --transport http-patch` (repeatable) runs only the transports named, `--engine node` only
// that engine: the results file keeps the other rows from their last run.

import * as fs from "node:fs";
import { parseArgs } from "node:util";
import { torture, tortureTable, type TortureOptions, type TortureRun, type TortureSummary, type TortureTransport } from "../host-sim/torture";

const transports: TortureTransport[] = ["http", "mqtt", "http-patch", "coap-patch", "mqtt-patch"];
const engines = ["node", "xs"] as const;
const { values } = parseArgs({ options: { transport: { type: "string", multiple: true }, engine: { type: "string", multiple: true } } });
const chosen = (values.transport ?? transports) as TortureTransport[];
for (const name of chosen) if (!transports.includes(name)) throw new Error(`unknown transport ${name} (${transports.join(", ")})`);
const chosenEngines = (values.engine ?? engines) as (typeof engines)[number][];
for (const name of chosenEngines) if (!engines.includes(name)) throw new Error(`unknown engine ${name} (node, xs)`);

const fixture = (name: string) => new Uint8Array(fs.readFileSync(new URL(`../test/fixtures/delta/${name}`, import.meta.url)));
/** The patched update: detools' heatshrink patch in esp_delta_ota framing, from the factory image to new.bin (256 KiB). */
const patch = { bytes: fixture("esp-delta-ota.patch"), image: fixture("new.bin") };

const summaries: TortureSummary[] = [];
for (const transport of chosen) {
	for (const engine of chosenEngines) {
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
	const [, transport, engine] = /^\| ([a-z-]+) \| (node|xs) \|/.exec(line) ?? [];
	return transport !== undefined && !(chosen.includes(transport as TortureTransport) && chosenEngines.includes(engine as "node" | "xs"));
}) : [];
const rows = table.split("\n");
/** A row's place: by transport, then engine. */
const place = (row: string) => {
	const [transport, engine] = row.slice(2).split(" | ");
	return transports.indexOf(transport as TortureTransport) * 2 + engines.indexOf(engine as "node" | "xs");
};
const ordered = [...kept, ...rows.slice(2)].sort((a, b) => place(a) - place(b));
fs.writeFileSync(results, `${[...rows.slice(0, 2), ...ordered].join("\n")}\n`);
process.exitCode = summaries.some((summary) => summary.violations.length) ? 1 : 0;
