// The command line as people meet it: no command or an unknown one is one usage line and exit 2; --help and -h on
// every command print its flags and exit 0; --version prints package.json's; an unknown flag is refused with the
// nearest known one; a refused configuration lists every problem, exit 1.

import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawn, spawnSync } from "node:child_process";
import * as net from "node:net";
import * as fs from "node:fs";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const xsOta = (...args: string[]) => spawnSync(process.execPath, [`${root}host-sim/bin/xs-ota.js`, ...args], { cwd: root, encoding: "utf8" });
const usage = /^usage: xs-ota image\|patch\|serve\|job\|device\|fleet\|demo \[flags\]/;

test("no command: the usage line alone, exit 2; an unknown command: the usage line and a hint, exit 2", () => {
	const none = xsOta();
	assert.equal([none.status, none.stdout, none.stderr.trim().split("\n").length], [2, "", 1]);
	assert.match(none.stderr, usage);
	const unknown = xsOta("flet", "--config", "x");
	assert.is(unknown.status, 2);
	assert.match(unknown.stderr, /unknown command flet: did you mean fleet\?/);
	assert.is(xsOta("job").status, 2);
});

test("--help and -h: every command's flags, exit 0; xs-ota --help lists the commands and the exit codes", () => {
	const all = xsOta("--help");
	assert.is(all.status, 0);
	assert.match(all.stdout, usage);
	assert.match(all.stdout, /xs-ota fleet monitor +Follows/);
	assert.match(all.stdout, /Exit codes: 0 done, 1 the command failed, 2 a usage mistake/);
	for (const [command, flag] of [[["image"], "--size BYTES"], [["patch"], "--heatshrink-window N"], [["serve"], "--client-ca CA.PEM"], [["job", "create"], "--stream-format json|cbor"], [["job"], "--thing NAME"],
		[["device"], "--cut-after-ops N"], [["fleet"], "--self-test-fail X"], [["fleet", "monitor"], "--interval SECONDS"], [["demo"], "--engine node|xs"]] as const)
		for (const help of ["--help", "-h"]) {
			const result = xsOta(...command, help);
			assert.is(result.status, 0, `${command.join(" ")} ${help}: ${result.stderr}`);
			assert.ok(result.stdout.startsWith(`usage: xs-ota ${command[0] === "job" ? "job create" : command.join(" ")} [flags]`), result.stdout);
			assert.ok(result.stdout.includes(flag), `${command.join(" ")} ${help} lists ${flag}`);
		}
	// Help wins over whatever else is wrong on the line.
	assert.is(xsOta("fleet", "--bogus", "-h").status, 0);
});

test("--version prints package.json's version", () => {
	const result = xsOta("--version");
	assert.equal([result.status, result.stdout.trim()], [0, JSON.parse(fs.readFileSync(`${root}package.json`, "utf8")).version]);
});

test("unknown flags are refused with the nearest as a hint; a flag without its value; exit 2", () => {
	const typo = xsOta("fleet", "--confg", "dev.ini", "--target", "aws");
	assert.is(typo.status, 2);
	assert.match(typo.stderr, /--confg is not a flag of xs-ota fleet: did you mean --config\?/);
	assert.match(xsOta("device", "--dir", "/tmp/x", "--polcy", "restart").stderr, /did you mean --policy\?/);
	assert.match(xsOta("fleet", "monitor", "--config").stderr, /--config needs a value \(FILE\)/);
	assert.is(xsOta("fleet", "monitor", "--config").status, 2);
	const far = xsOta("image", "--zzzzzz", "1");
	assert.is(far.status, 2);
	assert.not.match(far.stderr, /did you mean/);
	assert.match(xsOta("fleet", "--config", "x.ini", "--target", "aws", "--boards", "3").stderr, /--boards is not a flag of xs-ota fleet --target aws/);
});

test("errors are sentences: missing folders, a file for --dir, ports out of range or in use; a bad flag value exits 2", async () => {
	const dir = fs.mkdtempSync("/tmp/xs-ota-cli-");
	fs.writeFileSync(`${dir}/file`, "");
	const cases: [string[], number, RegExp][] = [
		[["image", "--out", "/nonexistent/dir/x.bin", "--size", "4096", "--version", "1.0"], 1, /^xs-ota image: cannot create \/nonexistent\/dir\/x\.bin: its folder does not exist\n$/],
		[["serve", "--dir", "/nonexistent", "--port", "18999"], 1, /^xs-ota serve: \/nonexistent does not exist\n$/],
		[["serve", "--dir", dir, "--port", "99999"], 2, /^xs-ota serve: --port takes 1 to 65535, not 99999\n$/],
		[["device", "--dir", `${dir}/file`], 1, /^xs-ota device: .*\/file is a file, not a folder\n$/],
		[["image", "--out", `${dir}/x.bin`, "--version", "1.0"], 2, /^xs-ota image: --size is required\n$/],
		[["image", "--out", `${dir}/x.bin`, "--size", "4096", "--version", "v".repeat(40)], 2, /--version takes at most 31 bytes/],
		[["image", "--out", `${dir}/x.bin`, "--size", "4096", "--version", "1", "--chip", "esp8266"], 2, /--chip is esp32, /],
		[["device", "--dir", `${dir}/board`, "--engine", "v8"], 2, /--engine is node or xs/],
		[["fleet", "--config", "x.ini", "--target", "simm"], 2, /--target is sim or aws/],
	];
	for (const [args, status, stderr] of cases) {
		const result = xsOta(...args);
		assert.is(result.status, status, `${args.join(" ")}: ${result.stderr}`);
		assert.match(result.stderr, stderr);
		assert.not.match(result.stderr, /ENOENT|EEXIST|EADDRINUSE|options\.port|Received type/);
	}
	// A port in use: a listener of this process holds it.
	const holder = net.createServer();
	await new Promise<void>((resolve) => holder.listen(0, "127.0.0.1", resolve));
	const taken = (holder.address() as net.AddressInfo).port;
	const child = spawn(process.execPath, [`${root}host-sim/bin/xs-ota.js`, "serve", "--dir", dir, "--port", String(taken)], { cwd: root });
	let stderr = "";
	child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
	const status = await new Promise<number | null>((resolve) => child.on("close", resolve));
	holder.close();
	assert.is(status, 1);
	assert.is(stderr, `xs-ota serve: port ${taken} on 127.0.0.1 is in use by another program: pick another --port\n`);
	fs.rmSync(dir, { recursive: true, force: true });
});

test("a refused configuration: every problem on its own line with file:line and key, exit 1", () => {
	const result = xsOta("fleet", "--config", "tools/fleet/examples/dev.ini", "--target", "aws", "--out", "/tmp/never-written");
	assert.is(result.status, 1);
	const lines = result.stderr.trim().split("\n");
	assert.is(lines.length, 5);
	assert.ok(lines.every((line) => /^xs-ota fleet: tools\/fleet\/examples\/dev\.ini:\d+: [A-Za-z_]+\.\w+: .* is an unfilled placeholder/.test(line)), result.stderr);
	assert.not.ok(fs.existsSync("/tmp/never-written"));
});

test.run();
