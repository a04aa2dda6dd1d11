/*
	npm run bench:fleet: how `xs-ota fleet --target sim` grows with the fleet. For 10, 100 and 1,000 boards it runs
	the command itself, in a fresh process each, on a 256 KiB image with AWS's default rate (every board notified in
	the first minute, so only the concurrency bounds how many run at once) and no faults, and reads the wall time,
	peak memory (the process's maximum RSS) and boards per second from its report. It also records the CPU time
	the run took (all its threads, from /proc: what other work on the machine does not change much) and the
	machine's one-minute load average before and after, since the wall time depends on what else runs.
	Writes bench/fleet-results.json and bench/fleet-results.md, and prints the table.
	  --sizes 10,100  other fleet sizes   --concurrency N  boards run at once (default 16)
*/

import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { makeAppImage } from "../host-sim/image";
import type { FleetReport } from "../host-sim/fleet/report";

const root = fileURLToPath(new URL("..", import.meta.url));
const argument = (name: string) => {
	const index = process.argv.indexOf(`--${name}`);
	return index < 0 ? undefined : process.argv[index + 1];
};
const sizes = (argument("sizes") ?? "10,100,1000").split(",").map(Number);
const concurrency = Number(argument("concurrency") ?? 16);
const imageBytes = 256 * 1024;

const work = fs.mkdtempSync(path.join(os.tmpdir(), "xs-ota-bench-fleet-"));
fs.writeFileSync(path.join(work, "fw.bin"), makeAppImage({ size: imageBytes, version: "2.0.0" }));
fs.writeFileSync(path.join(work, "dev.ini"), "[DEFAULT]\nbinName = fw.bin\njobId = bench\nstreamId = bench-stream\n");

/** CPU seconds of this process's reaped children (Linux /proc: cutime + cstime, in clock ticks of 1/100 s). */
const childCpuSeconds = (): number => {
	const fields = fs.readFileSync("/proc/self/stat", "utf8").replace(/^.*\) /, "").split(" ");
	return (Number(fields[13]) + Number(fields[14])) / 100;
};
const load = () => Number(os.loadavg()[0].toFixed(1));

const rows: {
	boards: number; wallSeconds: number; processSeconds: number; cpuSeconds: number; cpuMsPerBoard: number; peakRssMiB: number;
	boardsPerSecond: number; virtualSeconds: number; outcome: string; loadBefore: number; loadAfter: number;
}[] = [];
try {
	for (const boards of sizes) {
		const out = path.join(work, `out-${boards}`);
		const loadBefore = load(), cpuBefore = childCpuSeconds();
		const started = performance.now();
		const child = spawnSync(process.execPath, [
			path.join(root, "host-sim/bin/xs-ota.js"), "fleet", "--config", path.join(work, "dev.ini"), "--target", "sim", "--boards", String(boards),
			"--concurrency", String(concurrency), "--out", out,
		], { cwd: root, encoding: "utf8", maxBuffer: 64 << 20 });
		const processSeconds = (performance.now() - started) / 1000;
		const cpuSeconds = childCpuSeconds() - cpuBefore;
		if (child.status !== 0) throw new Error(`${boards} boards: exit ${child.status}\n${child.stderr}`);
		const report: FleetReport = JSON.parse(fs.readFileSync(path.join(out, "report.json"), "utf8"));
		rows.push({
			boards, wallSeconds: report.wall.seconds, processSeconds: Number(processSeconds.toFixed(1)), cpuSeconds: Number(cpuSeconds.toFixed(1)),
			cpuMsPerBoard: Math.round((cpuSeconds * 1000) / boards), peakRssMiB: Math.round(report.wall.peakRssBytes / 1048576),
			boardsPerSecond: report.wall.boardsPerSecond, virtualSeconds: report.wall.virtualSeconds, outcome: report.outcome, loadBefore, loadAfter: load(),
		});
		console.error(`${boards} boards: ${report.wall.seconds} s, ${rows[rows.length - 1].peakRssMiB} MiB, load ${loadBefore} → ${load()}`);
	}
}
finally {
	fs.rmSync(work, { recursive: true, force: true });
}

const results = { date: new Date().toISOString(), host: `${os.cpus()[0]?.model ?? "unknown"}, ${os.cpus().length} cores`, node: process.version, imageBytes, concurrency, rows };
const markdown = [
	`Run of ${results.date.slice(0, 10)}: ${results.host}, Node ${results.node}; 256 KiB image, ${concurrency} boards at once, no faults, every board notified in the first minute.`,
	"",
	"| boards | wall time (s) | process time (s) | boards per second | CPU time (s) | CPU ms per board | peak RSS (MiB) | virtual time (s) | load average before → after |",
	"|---|---|---|---|---|---|---|---|---|",
	...rows.map((row) => `| ${row.boards.toLocaleString("en")} | ${row.wallSeconds.toFixed(1)} | ${row.processSeconds.toFixed(1)} | ${row.boardsPerSecond.toFixed(1)} | ${row.cpuSeconds.toFixed(1)} | ${row.cpuMsPerBoard} | ${row.peakRssMiB} | ${row.virtualSeconds.toFixed(1)} | ${row.loadBefore} → ${row.loadAfter} |`),
	"",
].join("\n");
fs.writeFileSync(new URL("./fleet-results.json", import.meta.url), `${JSON.stringify(results, null, "\t")}\n`);
fs.writeFileSync(new URL("./fleet-results.md", import.meta.url), markdown);
console.log(markdown);
