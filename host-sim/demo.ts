// npm start: a complete simulated update on an embedded local server — download, one power cut mid-way,
// resume from the checkpoint, verify, switch, first boot, self-test, confirm — with a progress bar.
// npm start -- --lwm2m: the same driven by a local LwM2M server over CoAP, the package pulled from coap://.

import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { runDevice, type DeviceReport } from "./device";
import { ConsoleReport } from "./console-report";
import { makeAppImage, sha256Hex } from "./image";
import { startUpdateServer } from "./server/http-server";
import { CoapFileServer } from "./server/coap-file-server";
import { Lwm2mServer } from "./server/lwm2m-server";
import { Lwm2mUpdate } from "./server/lwm2m-update";
import { resultNames, stateNames } from "../src/agent/firmware-object";

type Flags = { [name: string]: string | true };

const report = new ConsoleReport({ logs: false });
/** The demo's story: boots, states, the cut and the progress bar (on a terminal). */
const show = (event: DeviceReport) => ["boot", "state", "power-cut", "progress"].includes(event.event) && report.show(event);

export async function runDemo(flags: Flags): Promise<void> {
	if (flags.lwm2m === true) return runLwm2mDemo(flags);
	const engine = flags.engine === "xs" ? "xs" : "node";
	const work = fs.mkdtempSync(path.join(os.tmpdir(), "xs-ota-demo-"));
	const www = path.join(work, "www"), board = path.join(work, "board");
	fs.mkdirSync(www);
	const image = makeAppImage({ size: 1024 * 1024, version: "2.0.0" });
	fs.writeFileSync(path.join(www, "app.bin"), image);
	const server = await startUpdateServer({ dir: www, port: 0 });
	const url = `${server.url}/app.bin`;
	console.log(`xs-ota demo on the ${engine} engine: board in ${board}, package ${url} (${image.length} bytes)`);
	try {
		const cutAt = 120;
		const first = await runDevice({ dir: board, engine, url, cutAfterOps: cutAt, onEvent: show });
		report.line("\npower back on: the agent restores its record and resumes");
		const second = await runDevice({ dir: board, engine, onEvent: show });
		const fetched = first.bytesFetched + second.bytesFetched;
		report.line(`\nrunning ${second.running.version} from slot ${second.running.slot}; image ${second.running.sha256 === sha256Hex(image) ? "matches" : "DIFFERS FROM"} the published one`);
		console.log(`fetched ${fetched} bytes for a ${image.length} byte image (${fetched - image.length} re-fetched after the cut)`);
		console.log(`final State ${second.state} (${stateNames[second.state]}), Update Result ${second.result} (${resultNames[second.result]})`);
		if (second.result !== 1) process.exitCode = 1;
	}
	finally {
		await server.close();
		fs.rmSync(work, { recursive: true, force: true });
	}
}

/**
	An LwM2M server (host-sim/server/lwm2m-server.ts) registers the board, observes State and Update Result,
	writes a coap:// Package URI and executes Update once the board reports Downloaded; power is cut once
	during the download, and the board resumes the CoAP pull on the same ETag.
*/
async function runLwm2mDemo(flags: Flags): Promise<void> {
	const engine = flags.engine === "xs" ? "xs" : "node";
	const work = fs.mkdtempSync(path.join(os.tmpdir(), "xs-ota-demo-"));
	const board = path.join(work, "board");
	const image = makeAppImage({ size: 1024 * 1024, version: "2.0.0" });
	const lwm2m = await Lwm2mServer.start(), files = await CoapFileServer.start();
	files.serve("/fw/app.bin", image);
	const endpoint = "xs-ota-demo";
	console.log(`xs-ota LwM2M demo on the ${engine} engine: server ${lwm2m.url}, package ${files.url("/fw/app.bin")} (${image.length} bytes)`);
	lwm2m.on("register", (registration) => console.log(`server: ${registration.endpoint} registered at ${registration.location} (lwm2m ${registration.lwm2mVersion}, lifetime ${registration.lifetime} s)`));
	lwm2m.on("notify", (event) => report.line(`server: notified ${event.path} = ${event.value}`));
	const commands: { action: string }[] = [];
	const update = new Lwm2mUpdate(lwm2m, endpoint, async (self) => {
		console.log("server: observing /5/0/3 and /5/0/5, writing Package URI");
		return lwm2m.write(self.endpoint, "/5/0/1", files.url("/fw/app.bin"));
	}, () => commands.push({ action: "shutdown" }));
	const config = { lwm2m: lwm2m.url, endpoint, lifetime: 300 };
	try {
		await runDevice({ dir: board, engine, config, commands, cutAfterOps: 60, runFor: 600000, onEvent: show });
		report.line("\npower back on: the board updates its registration and resumes the pull on the same ETag");
		const second = await runDevice({ dir: board, engine, config, commands, runFor: 600000, onEvent: show });
		report.line(`\nthe server heard State ${update.path.join(" → ")}, Update Result ${update.results[update.results.length - 1]}`);
		console.log(`running ${second.running.version} from slot ${second.running.slot}; image ${second.running.sha256 === sha256Hex(image) ? "matches" : "DIFFERS FROM"} the published one`);
		console.log(`served ${files.stats.bytes} bytes in ${files.stats.blocks} blocks for a ${image.length} byte image`);
		if (second.result !== 1) process.exitCode = 1;
	}
	finally {
		update.close();
		await lwm2m.close();
		await files.close();
		fs.rmSync(work, { recursive: true, force: true });
	}
}
