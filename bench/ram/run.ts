/*
	RAM on the real runtime: the whole update (download, verify, switch, first boot, report) on Moddable's desktop
	simulator, built with the creation the product ships for each ESP32 target (bench/ram/<target>/manifest.json:
	the target's heap sizes, the product's stack), over HTTP and HTTPS, with the agent preloaded as on the device.
	The download is cut: the simulator is killed (SIGKILL) after the first few progress lines, as a power cut
	would, and relaunched; the update must resume and end in Update Result 1. Prints the live XS heap per phase
	(README: "RAM on the real runtime" says how to read it and how to run the same by hand).

	  node --import ./host-sim/register.mjs bench/ram/run.ts [--targets esp32c3,esp32s3,esp32] [--transports http,https,patch]
	       [--out DIR] [--port PORT] [--size BYTES] [--kill-after LINES] [--fixed SLOTS,CHUNK_BYTES] [--stack SLOTS]
	       [--patch FILE --base FILE] [--render]

	patch: an HTTP pull of a patch (default test/fixtures/delta/esp-delta-ota.patch) on a board whose running image is
	  its base (default test/fixtures/delta/base.bin, written into ota_0 before the first launch); not in the default
	  transports. --patch and --base name another pair (a larger image, say).

	--kill-after: progress lines before the kill (default 4; 0: no kill, one download launch).
	--fixed: both heaps fixed (incremental 0) at these sizes, in place of the target's, the way the esp32c3 must fit
	  its one 92 KB block: a slot or chunk allocation that does not fit aborts the update with "memory full".
	--stack: the JS stack in slots, in place of the product's (stack overflow aborts the update).
	--render prints the table again from DIR/results.json without running anything.

	Needs the Moddable SDK's Linux tools ($MODDABLE, mcconfig and mcsim on PATH, TypeScript ≥ 6 first on PATH),
	xvfb-run and openssl. Builds go to DIR/build/<target> (mcconfig -o), so they never touch $MODDABLE/build's
	own app folders; each target's simulated board keeps its flash and preferences in DIR/board/<target>/ (so two
	runs with their own DIR and --port can run side by side).
*/

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { makePki } from "../../test/support/pki";

const root = fileURLToPath(new URL("../..", import.meta.url));
const cli = path.join(root, "host-sim/bin/xs-ota.js");
const targets = ["esp32c3", "esp32s3", "esp32"] as const;
type Target = (typeof targets)[number];
type Transport = "http" | "https" | "patch";

interface Phase {
	live: [number, number];
	metered: [number, number];
	reserved: [number, number];
	samples: number;
}
interface Run {
	target: Target;
	transport: Transport;
	/** Phase name → reading; after the reboot, names get a "2:" prefix. */
	phases: { [name: string]: Phase };
	result: string;
	seconds: number;
	/** The XS creation the build linked (its mc.xs.c): chunk initial, incremental, heap initial, incremental, stack. */
	creation?: number[];
}

function flag(name: string, fallback: string): string {
	const at = process.argv.indexOf(`--${name}`);
	return at > 0 && process.argv[at + 1] ? process.argv[at + 1] : fallback;
}

const wanted = flag("targets", targets.join(",")).split(",") as Target[];
const transports = flag("transports", "http,https").split(",") as Transport[];
const out = path.resolve(flag("out", "/tmp/xs-ota-ram"));
const port = Number(flag("port", "18080"));
const size = Number(flag("size", String(1 << 20)));
const killAfter = Number(flag("kill-after", "4"));
const fixed = process.argv.includes("--fixed") ? flag("fixed", "").split(",").map(Number) : undefined;
const stack = process.argv.includes("--stack") ? Number(flag("stack", "")) : undefined;
const patchFile = path.resolve(flag("patch", path.join(root, "test/fixtures/delta/esp-delta-ota.patch")));
const baseFile = path.resolve(flag("base", path.join(root, "test/fixtures/delta/base.bin")));
/** The app slots' size (boards/esp32/partitions.csv; host-sim/moddable-sim/ffi.ts backs each with a file). */
const appSlotBytes = 0x1e0000;
if (fixed && (fixed.length !== 2 || !fixed.every((n) => Number.isInteger(n) && n > 0))) throw new Error("--fixed SLOTS,CHUNK_BYTES");
if (stack !== undefined && !(Number.isInteger(stack) && stack > 0)) throw new Error("--stack SLOTS");
for (const target of wanted) if (!targets.includes(target)) throw new Error(`unknown target ${target}`);

const mcsim = path.join(process.env.MODDABLE ?? "", "build/bin/lin/release/mcsim");

function run(command: string, args: string[]): void {
	const result = spawnSync(command, args, { cwd: root, encoding: "utf8", maxBuffer: 256 << 20 });
	if (result.status !== 0) {
		process.stderr.write(result.stdout + result.stderr);
		throw new Error(`${command} ${args.join(" ")} exited ${result.status}`);
	}
}

/** Starts `xs-ota serve`; resolves once it listens. */
function serve(args: string[]): Promise<ChildProcess> {
	const child = spawn(process.execPath, [cli, "serve", ...args], { cwd: root, stdio: ["ignore", "pipe", "inherit"] });
	return new Promise((resolve, reject) => {
		child.stdout!.on("data", (data: Buffer) => { if (/serving/.test(data.toString())) resolve(child); });
		child.on("exit", (code) => reject(new Error(`xs-ota serve exited ${code}`)));
	});
}

/**
	One launch of mcsim (its own process group), until `done` matches the output or `seconds` pass. mcsim copies
	the app into $XDG_CONFIG_HOME/tech.moddable.mcsim/mc.so (default ~/.config) with cp, which rewrites the file in
	place: a second simulator started meanwhile would change the code under a running one. So each build gets
	a folder of its own.
*/
function launch(so: string, done: RegExp, seconds: number, killAt?: RegExp): Promise<string> {
	const env = { ...process.env, XDG_CONFIG_HOME: path.join(path.dirname(so), "mcsim-config") };
	fs.mkdirSync(env.XDG_CONFIG_HOME, { recursive: true });
	const child = spawn("xvfb-run", ["-a", "stdbuf", "-o0", mcsim, so], { detached: true, stdio: ["ignore", "pipe", "pipe"], env });
	let output = "";
	return new Promise((resolve) => {
		let finished = false;
		const finish = (signal: NodeJS.Signals = "SIGTERM") => {
			if (finished) return;
			finished = true;
			clearTimeout(timer);
			try { process.kill(-child.pid!, signal); } catch { /* gone */ }
			resolve(output);
		};
		const timer = setTimeout(finish, seconds * 1000);
		const take = (data: Buffer) => {
			output += data.toString();
			// The power cut: the whole process group at once, the simulator with no chance to save anything.
			if (killAt?.test(output)) finish("SIGKILL");
			else if (done.test(output)) setTimeout(finish, 300);
		};
		child.stdout!.on("data", take);
		child.stderr!.on("data", take);
		child.on("exit", () => finish());
	});
}

const phaseLine = /^ram: (\S+) live (\d+) slots (\d+) B, metered (\d+) slots (\d+) B, reserved (\d+) slots (\d+) B, (\d+) samples$/gm;
const failure = /XS abort: (?!unhandled exception).*|memory full|stack overflow|not enough memory/i;

function phasesOf(output: string, prefix: string, into: Run["phases"]): void {
	for (const m of output.matchAll(phaseLine)) {
		const n = m.slice(2).map(Number);
		into[prefix + m[1]] = { live: [n[0], n[1]], metered: [n[2], n[3]], reserved: [n[4], n[5]], samples: n[6] };
	}
}

/**
	The target's bench manifest, included by one in the build folder that gives the simulated board its folder
	under DIR and applies --fixed's heaps and --stack's stack.
*/
function manifestFor(target: Target, build: string, board: string): string {
	const creation: { [name: string]: unknown } = {};
	if (fixed) {
		creation.heap = { initial: fixed[0], incremental: 0 };
		creation.chunk = { initial: fixed[1], incremental: 0 };
	}
	if (stack !== undefined) creation.stack = stack;
	const file = path.join(build, "manifest.json");
	const manifest = { include: [path.join(root, "bench/ram", target, "manifest.json")], creation, config: { file: { root: board } } };
	fs.writeFileSync(file, JSON.stringify(manifest, null, "\t"));
	return file;
}

const progressLines = (count: number) => new RegExp(`(?:xs-ota: \\d+ of \\d+ bytes[^]*?){${count}}`);
const launchEnd = /xs-ota sim: restart|XS abort|memory full|stack overflow/;

/** The creation mcconfig wrote into the app's mc.xs.c: { chunk, chunk incr., slots, slots incr., stack, … }. */
function creationOf(file: string): number[] | undefined {
	const line = /^\s*\{ (\d+), (\d+), (\d+), (\d+), (\d+), \d+, \d+, \d+, \d+, \d+, \d+, (\d+),/m.exec(fs.readFileSync(file, "utf8"));
	return line?.slice(1).map(Number);
}

async function update(target: Target, transport: Transport, url: string, caDer?: Uint8Array, factory?: Uint8Array): Promise<Run> {
	const build = path.join(out, "build", target);
	fs.mkdirSync(build, { recursive: true });
	const board = path.join(out, "board", target) + "/";
	run("mcconfig", ["-m", "-p", "lin", "-o", build, manifestFor(target, build, board), `update=${url}`]);
	const so = path.join(build, "bin/lin/mc/release/xs-ota/mc.so");
	const creation = creationOf(path.join(build, "tmp/lin/mc/release/xs-ota/mc.xs.c"));
	fs.rmSync(board, { recursive: true, force: true });
	fs.mkdirSync(board, { recursive: true });
	// The trust anchor, provisioned the way platform/tls-credentials.ts reads it (domain xs-ota-tls, key ca), in
	// the simulator's preference store (host-sim/moddable-sim/preference.ts: "a", then the bytes).
	if (caDer) {
		fs.mkdirSync(path.join(board, "preferences/xs-ota-tls"), { recursive: true });
		fs.writeFileSync(path.join(board, "preferences/xs-ota-tls/ca"), Buffer.concat([Buffer.from("a"), caDer]));
	}
	// A patch's base as the running image: ota_0's file (host-sim/moddable-sim/ffi.ts), the rest erased flash.
	if (factory) {
		fs.mkdirSync(path.join(board, "xs-ota-sim"), { recursive: true });
		const slot = Buffer.alloc(appSlotBytes, 0xff);
		slot.set(factory);
		fs.writeFileSync(path.join(board, "xs-ota-sim/ota_0.bin"), slot);
	}
	const started = Date.now();
	// Cut: the first launch killed mid-download; the second resumes it, verifies and switches.
	const cut = killAfter > 0 ? await launch(so, launchEnd, 600, progressLines(killAfter)) : "";
	const killed = killAfter > 0 && !failure.test(cut) && !/xs-ota sim: restart/.test(cut);
	const first = killAfter > 0 && !killed ? "" : await launch(so, launchEnd, 600);
	const second = failure.test(first) || !/xs-ota sim: restart/.test(first) ? "" : await launch(so, /ram: done|XS abort|memory full|stack overflow/, 120);
	fs.writeFileSync(path.join(out, `${target}-${transport}.log`),
		`${killAfter > 0 ? `${cut}\n--- killed (SIGKILL), relaunch ---\n` : ""}${first}\n--- relaunch ---\n${second}`);
	const phases: Run["phases"] = {};
	// The killed launch's readings are those of its phases that ended (runtime, start, idle): "0:"; they count
	// towards the download launch's.
	phasesOf(cut, "0:", phases);
	phasesOf(first, "", phases);
	phasesOf(second, "2:", phases);
	const ended = /Update Result (\d+) \((\w[\w ]*)\)\s*$/m.exec(second.split("\n").filter((line) => /Update Result/.test(line)).pop() ?? "");
	const broke = failure.exec(cut + first + second);
	const result = broke ? `FAILED: ${broke[0]}` : killAfter > 0 && !killed ? "FAILED: not killed mid-download (see the log)"
		: ended ? `Update Result ${ended[1]}` : "FAILED: did not finish (see the log)";
	return { target, transport, phases, result, seconds: Math.round((Date.now() - started) / 1000), creation };
}

const kb = (bytes: number) => (bytes / 1024).toFixed(1);
const cell = (phase: Phase | undefined, pick: "live" | "reserved" = "live") =>
	phase ? `${phase[pick][0].toLocaleString("en-US")} / ${kb(phase[pick][1])}` : "–";
function peak(run: Run, names: string[]): Phase | undefined {
	const found = names.map((name) => run.phases[name]).filter((phase): phase is Phase => phase !== undefined);
	if (!found.length) return undefined;
	return found.reduce((a, b) => ({
		live: [Math.max(a.live[0], b.live[0]), Math.max(a.live[1], b.live[1])],
		metered: [Math.max(a.metered[0], b.metered[0]), Math.max(a.metered[1], b.metered[1])],
		reserved: [Math.max(a.reserved[0], b.reserved[0]), Math.max(a.reserved[1], b.reserved[1])],
		samples: a.samples + b.samples,
	}));
}

/** Builds and runs every target and transport asked for; writes results.json. */
async function updates(): Promise<Run[]> {
	if (!process.env.MODDABLE) throw new Error("set MODDABLE to the Moddable SDK");
	fs.mkdirSync(path.join(out, "www"), { recursive: true });
	const image = path.join(out, "www", "app.bin");
	run(process.execPath, [cli, "image", "--out", image, "--size", String(size), "--version", "2.0.0"]);
	const factory = transports.includes("patch") ? new Uint8Array(fs.readFileSync(baseFile)) : undefined;
	if (factory) fs.copyFileSync(patchFile, path.join(out, "www", "app.patch"));
	const servers: ChildProcess[] = [];
	let caDer: Uint8Array | undefined, pki: ReturnType<typeof makePki> | undefined;
	const runs: Run[] = [];
	try {
		servers.push(await serve(["--dir", path.dirname(image), "--port", String(port)]));
		if (transports.includes("https")) {
			pki = makePki(out);
			caDer = pki.root.certDer;
			servers.push(await serve(["--dir", path.dirname(image), "--port", String(port + 1), "--tls-cert", pki.server.chainPem, "--tls-key", pki.server.keyPem]));
		}
		for (const target of wanted) {
			for (const transport of transports) {
				const url = transport === "https" ? `https://localhost:${port + 1}/app.bin` : `http://127.0.0.1:${port}/app.${transport === "patch" ? "patch" : "bin"}`;
				process.stderr.write(`${target} ${transport}: building and updating…\n`);
				const result = await update(target, transport, url, transport === "https" ? caDer : undefined, transport === "patch" ? factory : undefined);
				process.stderr.write(`${target} ${transport}: ${result.result} (${result.seconds} s)\n`);
				runs.push(result);
			}
		}
	}
	finally {
		for (const server of servers) server.kill();
		pki?.close();
	}
	fs.writeFileSync(path.join(out, "results.json"), JSON.stringify(runs, null, "\t"));
	return runs;
}

async function main(): Promise<void> {
	const runs = process.argv.includes("--render") ? JSON.parse(fs.readFileSync(path.join(out, "results.json"), "utf8")) as Run[] : await updates();
	const lines = [
		"| target | transport | idle | download, peak | verify | install | first boot: confirm | report | heap grown to: download launch | first-boot launch | result |",
		"|---|---|---|---|---|---|---|---|---|---|---|",
	];
	for (const r of runs) {
		const names = Object.keys(r.phases);
		const first = peak(r, names.filter((name) => !name.startsWith("2:"))), second = peak(r, names.filter((name) => name.startsWith("2:")));
		lines.push(`| ${r.target} | ${r.transport} | ${cell(r.phases.idle ?? r.phases["0:idle"])} | ${cell(r.phases.download)} | ${cell(r.phases.verify)} | ${cell(r.phases.install)} | ${cell(peak(r, ["2:start", "2:confirm"]))} | ${cell(r.phases["2:report"])} | ${cell(first, "reserved")} | ${cell(second, "reserved")} | ${r.result} |`);
	}
	const creations = [...new Set(runs.map((r) => r.creation ? `${r.target}: ${r.creation[2].toLocaleString("en-US")} + ${r.creation[3]} slots, ${kb(r.creation[0])} + ${kb(r.creation[1])} KB of chunks, stack ${r.creation[4]} slots${r.creation[5] ? `, static ${r.creation[5].toLocaleString("en-US")} B` : ""}` : `${r.target}: ?`))];
	lines.push("", `Creation (initial + incremental): ${creations.join("; ")}.${runs.some((r) => r.phases["0:start"]) ? " Each download was killed (SIGKILL) and resumed." : ""}`);
	const table = lines.join("\n");
	fs.writeFileSync(path.join(out, "results.md"), table + "\n");
	console.log(table);
	const runtime = runs[0]?.phases.runtime;
	console.log(`\nslots / KB of chunks, live (after a collection); the runtime alone, before the agent exists: ${cell(runtime)}. Logs and results.json in ${out}`);
	if (runs.some((r) => r.result !== "Update Result 1")) process.exitCode = 1;
}

await main();
