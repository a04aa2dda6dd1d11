// npm start: a complete simulated update on an embedded local server — download, one power cut mid-way,
// resume from the checkpoint, verify, switch, first boot, self-test, confirm — with a progress bar.

import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { runDevice, type DeviceReport } from "./device";
import { makeAppImage, sha256Hex } from "./image";
import { startUpdateServer } from "./server/http-server";
import { resultNames, stateNames } from "../src/agent/firmware-object";

type Flags = { [name: string]: string | true };

export async function runDemo(flags: Flags): Promise<void> {
	const engine = flags.engine === "xs" ? "xs" : "node";
	const work = fs.mkdtempSync(path.join(os.tmpdir(), "xs-ota-demo-"));
	const www = path.join(work, "www"), board = path.join(work, "board");
	fs.mkdirSync(www);
	const image = makeAppImage({ size: 1024 * 1024, version: "2.0.0" });
	fs.writeFileSync(path.join(www, "app.bin"), image);
	const server = await startUpdateServer({ dir: www, port: 0 });
	const url = `${server.url}/app.bin`;
	console.log(`xs-ota demo on the ${engine} engine: board in ${board}, package ${url} (${image.length} bytes)`);
	const show = (event: DeviceReport) => {
		if (event.event === "progress") return bar(event.received as number, event.total as number);
		if (event.event === "log" || event.event === "erase") return;
		if (lastBar) process.stdout.write("\n");
		lastBar = "";
		if (event.event === "boot") console.log(`boot: slot ${event.slot}, firmware ${event.version}${event.rolledBack ? " (rolled back)" : ""}`);
		else if (event.event === "state") console.log(`State ${event.state} (${stateNames[event.state as number]}), Update Result ${event.result} (${resultNames[event.result as number]})`);
		else if (event.event === "power-cut") console.log(`POWER CUT during persistent write #${event.op} (${event.kind}) after ${event.bytesFetched} bytes`);
	};
	try {
		const cutAt = 120;
		const first = await runDevice({ dir: board, engine, url, cutAfterOps: cutAt, onEvent: show });
		console.log("\npower back on: the agent restores its record and resumes");
		const second = await runDevice({ dir: board, engine, onEvent: show });
		const fetched = first.bytesFetched + second.bytesFetched;
		console.log(`\nrunning ${second.running.version} from slot ${second.running.slot}; image ${second.running.sha256 === sha256Hex(image) ? "matches" : "DIFFERS FROM"} the published one`);
		console.log(`fetched ${fetched} bytes for a ${image.length} byte image (${fetched - image.length} re-fetched after the cut)`);
		console.log(`final State ${second.state} (${stateNames[second.state]}), Update Result ${second.result} (${resultNames[second.result]})`);
		if (second.result !== 1) process.exitCode = 1;
	}
	finally {
		await server.close();
		fs.rmSync(work, { recursive: true, force: true });
	}
}

let lastBar = "";
function bar(received: number, total: number): void {
	const width = 40, filled = total ? Math.round((received / total) * width) : 0;
	const line = `\r[${"#".repeat(filled)}${".".repeat(width - filled)}] ${String(Math.round((received / (total || 1)) * 100)).padStart(3)}%  ${received}/${total}`;
	if (line !== lastBar) process.stdout.write(line);
	lastBar = line;
}
