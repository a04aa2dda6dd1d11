// npm test: type-checks the device code (no Node types: it must run on XS) and the host code, runs every
// test file in its own process, and ends with the one line CI reads: "N passed, N failed".

import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const only = process.argv.slice(2);
let passed = 0, failed = 0;

function check(name: string, command: string, args: string[]): void {
	const result = spawnSync(command, args, { cwd: root, stdio: "inherit" });
	if (result.status === 0) passed++;
	else { failed++; console.log(`FAILED: ${name}`); }
}

if (!only.length) {
	check("device type check (tsconfig.json)", "npx", ["tsc", "-p", "tsconfig.json"]);
	check("host type check (tsconfig.host.json)", "npx", ["tsc", "-p", "tsconfig.host.json"]);
	check("simulated modules type check (tsconfig.sim.json)", "npx", ["tsc", "-p", "tsconfig.sim.json"]);
}

const files = fs.readdirSync(new URL(".", import.meta.url)).filter((name) => name.endsWith(".test.ts")).sort()
	.filter((name) => !only.length || only.some((wanted) => name.includes(wanted)));
for (const file of files) {
	console.log(`\n# ${file}`);
	const result = spawnSync(process.execPath, ["--import", "./host-sim/register.mjs", `test/${file}`], { cwd: root, encoding: "utf8", maxBuffer: 64 << 20 });
	process.stdout.write(result.stdout);
	process.stderr.write(result.stderr);
	const total = Number(/Total:\s+(\d+)/.exec(result.stdout)?.[1] ?? NaN);
	const ok = Number(/Passed:\s+(\d+)/.exec(result.stdout)?.[1] ?? NaN);
	if (Number.isNaN(total) || Number.isNaN(ok)) {
		failed++;
		console.log(`FAILED: ${file} did not finish (exit ${result.status})`);
		continue;
	}
	passed += ok;
	failed += total - ok;
	if (result.status !== 0 && total === ok) { failed++; console.log(`FAILED: ${file} exited ${result.status}`); }
}

console.log(`\n${passed} passed, ${failed} failed`);
process.exitCode = failed ? 1 : 0;
