// What a power-on starts with, on both engines: the node engine runs every power-on of a thread in one V8
// realm, so these check that nothing of one boot reaches the next.

import { execFileSync, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { startUpdateServer } from "../host-sim/server/http-server";
import { tempDir, traced } from "./support/sim";

const entry = "test/fixtures/engine/entry.ts";

type Seen = { moduleBodyRuns: number; globalsFresh: boolean; builtIn: string; leakAtStart: number | null; constructorIntact: boolean; now: number; boardTime: number };

async function boot(engine: "node" | "xs"): Promise<Seen> {
	const outcome = await traced({ dir: tempDir("engine"), engine, entry, startTime: Date.UTC(2026, 0, 1) });
	assert.is(outcome.logs.length, 1, outcome.logs.join("\n"));
	return JSON.parse(outcome.logs[0]);
}

for (const engine of ["node", "xs"] as const) {
	test(`${engine}: each power-on runs the module bodies afresh, with globals of its own and the board's clock`, async () => {
		for (let power = 0; power < 3; power++) {
			const seen = await boot(engine);
			assert.is(seen.moduleBodyRuns, 1, "module state starts over");
			assert.ok(seen.globalsFresh, "no global left by an earlier power-on");
			assert.is(seen.now, seen.boardTime, "Date.now is the board's clock");
			assert.ok(Math.abs(seen.now - Date.UTC(2026, 0, 1)) < 60_000, "the clock starts where the run says");
			assert.is(seen.leakAtStart, null, "no built-in changed by an earlier power-on");
		}
	});
}

test("node: the built-ins are frozen, so a board cannot change them for the next", async () => {
	for (let power = 0; power < 2; power++) {
		const seen = await boot("node");
		assert.is(seen.builtIn, "refused");
	}
});

test("node: a built-in that cannot be frozen is watched: changing it fails the run, and the next power-on finds it put back", async () => {
	const failure = await traced({ dir: tempDir("engine"), engine: "node", entry: "test/fixtures/engine/changes-built-in.ts" }).then(() => undefined, (error: Error) => error.message);
	assert.is(failure, "the firmware changed Uint8Array.prototype.constructor, a built-in every power-on on this thread shares");
	const seen = await boot("node");
	assert.is(seen.constructorIntact, true);
	const rebound = await traced({ dir: tempDir("engine"), engine: "node", entry: "test/fixtures/engine/changes-global.ts" }).then(() => undefined, (error: Error) => error.message);
	assert.is(rebound, "the firmware changed JSON, a built-in every power-on on this thread shares");
	assert.is((await boot("node")).moduleBodyRuns, 1, "the next power-on writes its line with the real JSON");
});

test("xs hands the device several queued events a command, yet it sees what node shows it: the same events, in order, at the same times", async () => {
	const www = tempDir("events-www");
	fs.writeFileSync(path.join(www, "file.bin"), new Uint8Array(120_000).fill(7));
	const server = await startUpdateServer({ dir: www, port: 0 });
	try {
		// settle: the virtual clock moves by timers and link time alone, so the story does not depend on the host.
		const run = (engine: "node" | "xs") => traced({ dir: tempDir("events"), engine, entry: "test/fixtures/engine/events.ts", url: `${server.url}/file.bin`, settle: true, startTime: Date.UTC(2026, 0, 1) });
		const node = await run("node"), xs = await run("xs");
		assert.equal(xs.logs, node.logs);
		assert.is(node.logs.filter((line) => line.startsWith("fragment")).length, 60);
		const timers = node.logs.filter((line) => line.startsWith("timer"));
		assert.is(timers.length, 7);
		for (const line of timers) {
			const [, setAfter, setAt, firedAfter, firedAt] = /after fragment (\d+) at (\d+), fired after fragment (\d+) at (\d+)/.exec(line)!.map(Number);
			assert.ok(firedAfter > setAfter && firedAfter <= setAfter + 2 && firedAt >= setAt + 2, line);
		}
		assert.is(xs.wakeups, node.wakeups);
		// heapSlots has one entry a command.
		assert.ok(xs.heapSlots.length * 3 < xs.wakeups, `${xs.heapSlots.length} commands for ${xs.wakeups} events`);
	}
	finally {
		await server.close();
	}
});

for (const engine of ["node", "xs"] as const) {
	test(`${engine}: 5,000 flash writes that wait for no answer all land, each with the bytes it was given`, async () => {
		const outcome = await traced({ dir: tempDir("many-writes"), engine, entry: "test/fixtures/engine/many-writes.ts" });
		assert.equal(outcome.logs, ["read back 20000 bytes, 0 wrong"]);
	});

	test(`${engine}: flash writes and the OTA helper's erase refuse bad arguments at the call, as the board does; good ones land before the next read`, async () => {
		const outcome = await traced({ dir: tempDir("bad-arguments"), engine, entry: "test/fixtures/engine/bad-arguments.ts" });
		// Past the slot's end, a negative offset, more bytes than the buffer holds.
		assert.is(outcome.logs[0], "writes: write failed, write failed, write failed");
		// ESP_ERR_INVALID_ARG (unaligned offset, then length), ESP_ERR_INVALID_SIZE (past the slot), ESP_OK.
		assert.is(outcome.logs[1], "codes 102 102 104 0; then 255,255,255,255");
		assert.is(outcome.logs.length, 2);
	});
}

/** Processes on this machine: pid, parent, command name (Linux /proc). */
function processes(): { pid: number; ppid: number; name: string; command: string }[] {
	const found = [];
	for (const entry of fs.readdirSync("/proc")) {
		if (!/^\d+$/.test(entry)) continue;
		try {
			const stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8");
			const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
			const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
			found.push({ pid: Number(entry), ppid, name, command: fs.readFileSync(`/proc/${entry}/cmdline`, "utf8") });
		}
		catch {
			// Gone since the listing.
		}
	}
	return found;
}

test("xs: the workers come from one launcher, started once, not forked from the host at each power-on", async () => {
	const seen: { workersOfHost: number; launchers: number[]; workersOfLauncher: number }[] = [];
	for (let power = 0; power < 3; power++) {
		await traced({ dir: tempDir("engine"), engine: "xs", entry, onEvent: (event) => {
			if (event.event !== "log") return;
			const all = processes();
			const launchers = all.filter(({ ppid, command }) => ppid === process.pid && command.includes("xsnap-launcher.js")).map(({ pid }) => pid);
			seen.push({
				workersOfHost: all.filter(({ ppid, name }) => ppid === process.pid && name === "xsnap-worker").length,
				launchers,
				workersOfLauncher: all.filter(({ ppid, name }) => launchers.includes(ppid) && name === "xsnap-worker").length,
			});
		} });
	}
	assert.is(seen.length, 3);
	for (const { workersOfHost, launchers, workersOfLauncher } of seen) {
		assert.is(workersOfHost, 0, "no worker forked from the host");
		assert.equal(launchers, seen[0].launchers, "the same launcher");
		assert.is(launchers.length, 1);
		assert.ok(workersOfLauncher >= 1, "the running worker is the launcher's");
	}
});

test("xs: the launcher and its workers go when the host process dies", async () => {
	// The host notes its launcher and worker while the device runs (its log line is the moment), then kills itself,
	// as a crash or a kill -9 would end it.
	const host = spawn(process.execPath, ["--import", "./host-sim/register.mjs", "--input-type=module", "-e", `
		import { runDevice } from "./host-sim/device.ts";
		import * as fs from "node:fs";
		const children = (parent) => fs.readdirSync("/proc").filter((pid) => /^\\d+$/.test(pid)).filter((pid) => {
			try { return fs.readFileSync("/proc/" + pid + "/stat", "utf8").split(") ")[1].split(" ")[1] === String(parent); } catch { return false; }
		}).map(Number);
		await runDevice({ dir: ${JSON.stringify(tempDir("engine"))}, engine: "xs", entry: ${JSON.stringify(entry)}, onEvent: (event) => {
			if (event.event !== "log") return;
			const launcher = children(process.pid).find((pid) => fs.readFileSync("/proc/" + pid + "/cmdline", "utf8").includes("xsnap-launcher.js"));
			fs.writeSync(1, JSON.stringify({ launcher, workers: children(launcher) }));
			process.kill(process.pid, "SIGKILL");
		} });`], { stdio: ["ignore", "pipe", "inherit"] });
	let output = "";
	host.stdout.on("data", (chunk) => output += chunk);
	const signal = await new Promise((resolve) => host.on("close", (_code, signal) => resolve(signal)));
	assert.is(signal, "SIGKILL");
	const { launcher, workers } = JSON.parse(output) as { launcher?: number; workers: number[] };
	assert.ok(launcher !== undefined, "the host had a launcher");
	assert.is(workers.length, 1);
	// Gone within a generous bound: the launcher hears its channel close at once. A zombie has gone too.
	const gone = (pid: number) => {
		try {
			const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
			return stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
		}
		catch {
			return true;
		}
	};
	const untilGone = async (pid: number) => {
		for (let waited = 0; !gone(pid) && waited < 30_000; waited += 20) await new Promise((resolve) => setTimeout(resolve, 20));
		return gone(pid);
	};
	assert.ok(await untilGone(launcher), "the launcher is gone");
	assert.ok(await untilGone(workers[0]), "its worker is gone");
});

test("a preference buffer replaced in place needs no answer, on both engines; one that outgrows the store's room still fails", async () => {
	const run = async (engine: "node" | "xs") => {
		const ops: string[] = [];
		const outcome = await traced({ dir: tempDir("preferences"), engine, entry: "test/fixtures/engine/preferences.ts", onBoard: (board) => {
			const call = board.call.bind(board);
			board.call = (op, args, data) => {
				if (op.startsWith("preference.") && op !== "preference.get") ops.push(op);
				return call(op, args, data);
			};
		} });
		return { logs: outcome.logs, ops };
	};
	const node = await run("node"), xs = await run("xs");
	assert.equal(xs, node);
	assert.equal(node.logs, [
		"after 50 replacements: 100 bytes of 50",
		"4 fillers fit, then: no space",
		"replaced in a full store: 100 bytes of 52",
		"growing it: no space; now undefined",
		"set again: 100 bytes of 54",
	]);
	assert.equal(node.ops.slice(0, 51), ["preference.setBuffer", ...Array(50).fill("preference.replaceBuffer")]);
	// Five fillers, each a new key, the last failing. Then the record twice at its size (the first asks what is
	// free, after the failure), then grown (asks, and fails), then set anew (its size unknown: asks).
	assert.equal(node.ops.slice(51 + 5), ["preference.setBuffer", "preference.replaceBuffer", "preference.setBuffer", "preference.setBuffer"]);
});

test("the bundle is built again, in a new process, when a file that went into it changed", () => {
	const dir = tempDir("bundle-input"), entry = path.join(dir, "entry.ts"), part = path.join(dir, "part.ts");
	fs.writeFileSync(entry, 'import { word } from "./part";\ndeclare function trace(text: string): void;\ntrace(word);\n');
	const bundled = (of = entry) => execFileSync(process.execPath, ["--import", "./host-sim/register.mjs", "--input-type=module", "-e",
		`import { deviceBundle } from "./host-sim/engines/bundle.ts"; process.stdout.write(deviceBundle(${JSON.stringify(of)}));`], { encoding: "utf8" });
	fs.writeFileSync(part, 'export const word = "first";\n');
	assert.match(bundled(), /"first"/);
	assert.match(bundled(), /"first"/, "from the stored bundle");
	fs.writeFileSync(part, 'export const word = "second";\n');
	assert.match(bundled(), /"second"/);
	// Its inputs gone, the stored bundle goes too, at the next store.
	const cache = "node_modules/.cache/xs-ota-bundle";
	const storedFor = () => fs.readdirSync(cache).filter((name) => name.endsWith(".json") && fs.readFileSync(path.join(cache, name), "utf8").includes(JSON.stringify(entry)));
	assert.is(storedFor().length, 1);
	fs.rmSync(dir, { recursive: true });
	const other = tempDir("bundle-input");
	fs.writeFileSync(path.join(other, "entry.ts"), "declare function trace(text: string): void;\ntrace(\"other\");\n");
	assert.match(bundled(path.join(other, "entry.ts")), /"other"/);
	assert.is(storedFor().length, 0);
	fs.rmSync(other, { recursive: true });
});

test.run();
