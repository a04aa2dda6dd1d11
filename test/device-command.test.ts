// `xs-ota device` as a user runs it, on both engines: a run with --run-for still finishes the network work it
// started; maintenance flags replace stored settings (the user's consent given later installs); IANA zone names
// become the board's POSIX TZ and a bad zone stops the command; --severity, --no-reboot-persistence; an orderly
// shutdown ends with a "shut-down" event; without --json, lines for people and a closing summary; --exit-code.

import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { startUpdateServer, type UpdateServer } from "../host-sim/server/http-server";
import { publish, tempDir } from "./support/sim";
import { ConsoleReport } from "../host-sim/console-report";

const root = fileURLToPath(new URL("..", import.meta.url));
const berlin = "CET-1CEST,M3.5.0,M10.5.0/3";
type Event = { event: string; [key: string]: unknown };
type Finished = { status: number | null; events: Event[]; stderr: string };

let www: string;
let server: UpdateServer;
let url: string;
/** Sends the first 300 KiB of the image, then holds the connection: a download that is surely under way. */
let stalling: http.Server;
let stallingUrl: string;

test.before(async () => {
	www = tempDir("www");
	const { bytes } = publish(www, "app.bin", 1024 * 1024, "2.0.0");
	server = await startUpdateServer({ dir: www });
	url = `${server.url}/app.bin`;
	stalling = http.createServer((_request, response) => {
		response.writeHead(200, { "content-length": bytes.length, etag: '"stalling"' });
		response.write(bytes.subarray(0, 300 * 1024));
	});
	await new Promise<void>((resolve) => stalling.listen(0, "127.0.0.1", resolve));
	stallingUrl = `http://127.0.0.1:${(stalling.address() as AddressInfo).port}/app.bin`;
});
test.after(async () => {
	stalling.closeAllConnections();
	stalling.close();
	await server.close();
	fs.rmSync(www, { recursive: true, force: true });
});

/** Runs `xs-ota device … --json` (not spawnSync: the test's own server must keep answering); `whenEvent` may signal it. */
function device(args: string[], whenEvent?: (event: Event, signal: (name: NodeJS.Signals) => void) => void): Promise<Finished> {
	return new Promise((resolve) => {
		const child = spawn(process.execPath, [path.join(root, "host-sim/bin/xs-ota.js"), "device", ...args, "--json"], { cwd: root });
		const events: Event[] = [];
		let stdout = "", stderr = "";
		child.stdout.on("data", (chunk: Buffer) => {
			stdout += chunk.toString();
			let newline;
			while ((newline = stdout.indexOf("\n")) >= 0) {
				const event = JSON.parse(stdout.slice(0, newline)) as Event;
				stdout = stdout.slice(newline + 1);
				events.push(event);
				whenEvent?.(event, (name) => child.kill(name));
			}
		});
		child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
		child.on("close", (status) => resolve({ status, events, stderr }));
	});
}

const last = (finished: Finished) => finished.events[finished.events.length - 1];
const states = (finished: Finished) => finished.events.filter((event) => event.event === "state").map((event) => [event.state, event.result]);

for (const engine of ["node", "xs"] as const) {
	test(`${engine}: --run-for ending before the next timer still lets the resumed download run to its window`, async () => {
		const dir = tempDir("board");
		const window = ["--maintenance", "02:30", "--tz", berlin, "--mode", "background"];
		const cut = await device(["--dir", dir, "--engine", engine, "--url", url, "--cut-after-ops", "200", "--clock", "2026-06-10T10:00:00Z", "--run-for", "1h", ...window]);
		assert.equal([cut.status, last(cut).event, last(cut).bytesFetched !== undefined], [0, "power-cut", true]);
		const requests = server.stats.requests;
		// The next window is 14.5 h away: the run's end comes first, but the restored download is network work under way.
		const resumed = await device(["--dir", dir, "--engine", engine, "--clock", "2026-06-10T12:00:00Z", "--run-for", "1h"]);
		assert.is(resumed.status, 0, resumed.stderr);
		assert.ok(server.stats.requests > requests, "the resumed download reached the server");
		assert.equal(states(resumed).slice(-1), [[2, 11]], "downloaded and verified, held for the window");
	});

	test(`${engine}: --opt-out given on a later power-on replaces the stored one: the user's consent installs`, async () => {
		const dir = tempDir("board");
		const held = await device(["--dir", dir, "--engine", engine, "--url", url, "--opt-out", "enforce-optout", "--run-for", "1h"]);
		assert.equal(states(held).slice(-1), [[2, 11]], "held until the user consents");
		const consented = await device(["--dir", dir, "--engine", engine, "--opt-out", "bypass-optout", "--run-for", "1h"]);
		assert.is(consented.status, 0, consented.stderr);
		assert.equal([last(consented).event, last(consented).result, (last(consented).running as { version: string }).version], ["idle", 1, "2.0.0"]);
	});

	test(`${engine}: an IANA zone name runs the window at local time; a critical --severity installs at once in background mode`, async () => {
		const dir = tempDir("board");
		const windowed = await device(["--dir", dir, "--engine", engine, "--maintenance", "04:00", "--tz", "Europe/Berlin", "--mode", "background",
			"--clock", "2026-06-10T10:00:00Z", "--run-for", "1d"]);
		assert.is(windowed.status, 0, windowed.stderr);
		const scheduled = windowed.events.filter((event) => event.event === "maintenance" && event.kind === "scheduled" && event.status === "STARTED");
		assert.equal(scheduled.map((event) => new Date(event.at as number).toISOString()), ["2026-06-11T02:00:00.000Z"], "04:00 in Berlin's summer time");
		const critical = await device(["--dir", dir, "--engine", engine, "--url", url, "--severity", "critical", "--clock", "2026-06-11T10:00:00Z", "--run-for", "1h"]);
		assert.equal([last(critical).event, last(critical).result, (last(critical).running as { version: string }).version], ["time-up", 1, "2.0.0"], "not held for the window");
	});

	test(`${engine}: SIGTERM mid-download ends with a "shut-down" event in State 1; --no-reboot-persistence forgets the job`, async () => {
		const dir = tempDir("board");
		let sent = false;
		const stopped = await device(["--dir", dir, "--engine", engine, "--url", stallingUrl, "--no-reboot-persistence"], (event, signal) => {
			if (event.event === "progress" && (event.received as number) > 256 * 1024 && !sent) {
				sent = true;
				signal("SIGTERM");
			}
		});
		assert.is(stopped.status, 0, stopped.stderr);
		assert.equal([last(stopped).event, last(stopped).state], ["shut-down", 1]);
		const after = await device(["--dir", dir, "--engine", engine, "--no-reboot-persistence", "--run-for", "1h"]);
		assert.equal([last(after).event, last(after).state, (last(after).running as { version: string }).version], ["idle", 0, "1.0.0"], "a reboot forgot the job");
	});
}

/** `xs-ota device` without --json, its output a pipe (not a terminal). */
function human(args: string[]): Promise<{ status: number | null; stdout: string }> {
	return new Promise((resolve) => {
		const child = spawn(process.execPath, [path.join(root, "host-sim/bin/xs-ota.js"), "device", ...args], { cwd: root });
		let stdout = "";
		child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
		child.on("close", (status) => resolve({ status, stdout }));
	});
}

test("without --json: lines with State and Result names, no progress frames in a pipe, a closing summary; --exit-code", async () => {
	const updated = await human(["--dir", tempDir("board"), "--url", url]);
	assert.is(updated.status, 0);
	assert.ok(updated.stdout.includes("State 1 (downloading), Update Result 0 (initial)\n"), updated.stdout);
	assert.not.ok(updated.stdout.includes("\r"), "no progress bar frames when the output is not a terminal");
	assert.not.match(updated.stdout, /^\{/m, "no JSON");
	assert.match(updated.stdout, /\nidle: State 0 \(idle\), Update Result 1 \(success\); running 2\.0\.0 from slot 1; 1,048,576 bytes received\n$/);
	const missing = `${server.url}/missing.bin`;
	const failed = await human(["--dir", tempDir("board"), "--url", missing]);
	assert.is(failed.status, 0, "a failed update is still a run that ended");
	assert.match(failed.stdout, /Update Result 7 \(invalid uri\); running 1\.0\.0 from slot 0/);
	assert.is((await human(["--dir", tempDir("board"), "--url", missing, "--exit-code"])).status, 3);
	assert.is((await human(["--dir", tempDir("board"), "--url", url, "--exit-code"])).status, 0);
});

test("on a terminal the progress is one bar redrawn in place, closed before the next line", () => {
	let written = "";
	const report = new ConsoleReport({ logs: false, terminal: true, write: (text) => (written += text) });
	for (const received of [0, 512, 1024]) report.show({ event: "progress", received, total: 1024 });
	report.show({ event: "state", state: 2, result: 0 });
	assert.is(written, `\r[${".".repeat(40)}]   0%  0/1024\r[${"#".repeat(20)}${".".repeat(20)}]  50%  512/1024\r[${"#".repeat(40)}] 100%  1024/1024\nState 2 (downloaded), Update Result 0 (initial)\n`);
});

test("serve --lwm2m --update drives a board's update from the command line: Package URI, Update, success, exit 0", async () => {
	const serve = spawn(process.execPath, [path.join(root, "host-sim/bin/xs-ota.js"), "serve", "--lwm2m", "--file", path.join(www, "app.bin"), "--update", "cli-driven"], { cwd: root });
	let served = "";
	const serverUrl = new Promise<string>((resolve) => serve.stdout.on("data", (chunk: Buffer) => {
		served += chunk.toString();
		const found = /lwm2m server at (coap:\/\/\S+)/.exec(served);
		if (found) resolve(found[1]);
	}));
	const servedExit = new Promise<number | null>((resolve) => serve.on("close", resolve));
	let device: ReturnType<typeof spawn> | undefined;
	try {
		device = spawn(process.execPath, [path.join(root, "host-sim/bin/xs-ota.js"), "device", "--dir", tempDir("board"), "--lwm2m", await serverUrl, "--endpoint", "cli-driven", "--json"], { cwd: root });
		let events = "";
		device.stdout!.on("data", (chunk: Buffer) => (events += chunk.toString()));
		const deviceExit = new Promise<number | null>((resolve) => device!.on("close", resolve));
		assert.is(await servedExit, 0, served);
		assert.match(served, /cli-driven: Package URI written: 2\.04/);
		assert.match(served, /cli-driven: \/5\/0\/3 = 2 \(downloaded\)/);
		assert.match(served, /update of cli-driven ended: Update Result 1 \(success\)\n/);
		device.kill("SIGINT");
		assert.is(await deviceExit, 0);
		const final = events.trim().split("\n").map((line) => JSON.parse(line) as Event).pop()!;
		assert.equal([final.event, final.result, (final.running as { version: string }).version], ["shut-down", 1, "2.0.0"]);
	}
	finally {
		serve.kill("SIGKILL");
		device?.kill("SIGKILL");
	}
});

test("bad maintenance flags stop the command with a sentence and exit 2, before the board runs", async () => {
	const dir = tempDir("board");
	for (const [flags, sentence] of [
		[["--tz", "Mars/Olympus"], /--tz Mars\/Olympus is not a time zone this computer knows .*give a POSIX TZ such as CET-1CEST/],
		[["--tz", "CET-1CEST,M3.5.0,M13.5.0"], /--tz CET-1CEST,M3\.5\.0,M13\.5\.0 is not a POSIX TZ \(/],
		[["--maintenance", "25:00"], /--maintenance takes HH:MM, from 00:00 to 23:59/],
		[["--window", "0"], /--window takes 1 to 1440 minutes/],
		[["--severity", "urgent", "--url", "http://127.0.0.1:9/x"], /--severity is critical, major, minor/],
	] as const) {
		const refused = await device(["--dir", dir, ...flags]);
		assert.is(refused.status, 2, flags.join(" "));
		assert.match(refused.stderr, sentence);
		assert.equal(refused.events, [], "the board did not run");
	}
});

test.run();
