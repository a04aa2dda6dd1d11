// npm test: type-checks the device code (no Node types: it must run on XS) and the host code, runs every
// test file in its own process, and ends with the one line CI reads: "N passed, N failed".
// Files run two at a time (XS_OTA_TEST_JOBS sets how many); each file's output is printed whole when it ends,
// so two files' lines never interleave. No suite depends on the machine's speed, so the neighbour's load is fine.

import { spawn } from "node:child_process";
import * as fs from "node:fs";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const only = process.argv.slice(2);
const jobs = Math.max(1, Number(process.env.XS_OTA_TEST_JOBS ?? 2) || 1);
let passed = 0, failed = 0;
const started = performance.now();
const durations: [string, number][] = [];

/** Runs a command to its end, its output captured. */
function run(command: string, args: string[]): Promise<{ status: number | null; output: string }> {
	return new Promise((resolve) => {
		const child = spawn(command, args, { cwd: root });
		let output = "";
		child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
		child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
		child.on("close", (status) => resolve({ status, output }));
	});
}

async function check(name: string, args: string[]): Promise<void> {
	const result = await run("npx", args);
	process.stdout.write(result.output);
	if (result.status === 0) passed++;
	else { failed++; console.log(`FAILED: ${name}`); }
}

async function testFile(file: string): Promise<void> {
	const begun = performance.now();
	const result = await run(process.execPath, ["--import", "./host-sim/register.mjs", `test/${file}`]);
	const ms = performance.now() - begun;
	durations.push([file, ms]);
	process.stdout.write(`\n# ${file} (${(ms / 1000).toFixed(1)} s)\n${result.output}`);
	const total = Number(/Total:\s+(\d+)/.exec(result.output)?.[1] ?? NaN);
	const ok = Number(/Passed:\s+(\d+)/.exec(result.output)?.[1] ?? NaN);
	if (Number.isNaN(total) || Number.isNaN(ok)) {
		failed++;
		console.log(`FAILED: ${file} did not finish (exit ${result.status})`);
		return;
	}
	passed += ok;
	failed += total - ok;
	if (result.status !== 0 && total === ok) { failed++; console.log(`FAILED: ${file} exited ${result.status}`); }
}

if (!only.length) {
	await Promise.all([
		check("device type check (tsconfig.json)", ["tsc", "-p", "tsconfig.json"]),
		check("host type check (tsconfig.host.json)", ["tsc", "-p", "tsconfig.host.json"]),
		check("simulated modules type check (tsconfig.sim.json)", ["tsc", "-p", "tsconfig.sim.json"]),
	]);
}

const files = fs.readdirSync(new URL(".", import.meta.url)).filter((name) => name.endsWith(".test.ts")).sort()
	.filter((name) => !only.length || only.some((wanted) => name.includes(wanted)));
const queue = [...files];
await Promise.all(Array.from({ length: Math.min(jobs, queue.length) }, async () => {
	for (let file = queue.shift(); file !== undefined; file = queue.shift()) await testFile(file);
}));

const slowest = durations.sort((a, b) => b[1] - a[1]).slice(0, 5).map(([file, ms]) => `${file} ${(ms / 1000).toFixed(0)} s`);
console.log(`\n${files.length} files in ${((performance.now() - started) / 1000).toFixed(0)} s, ${jobs} at a time; slowest: ${slowest.join(", ")}`);
console.log(`${passed} passed, ${failed} failed`);
process.exitCode = failed ? 1 : 0;
