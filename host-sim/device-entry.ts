// The simulated board's firmware: the real agent (src/main.ts's createUpdater, on the emulated Moddable
// modules, with AWS IoT jobs when config names a broker and a thing) plus the stand-in for an LwM2M server and
// the app: commands the board delivers as events on id 0 (update, shutdown, maintenance settings, start, stop).

import config from "mc/config";
import { createUpdater } from "../src/main";
import type { JobOptions } from "../src/agent/agent";
import type { MaintenanceSettings } from "../src/agent/maintenance";
import { call, dispatch, listen } from "./modules/host";

declare const globalThis: { deviceDeliver?: (event: { id: number }, data: ArrayBuffer | undefined) => void; trace?: (...values: unknown[]) => void };

globalThis.trace = (...values: unknown[]) => call("log", values.join("").replace(/\n$/, ""));
globalThis.deviceDeliver = dispatch;

// config.failSelfTest: this board's new image fails its self-test (fleet rehearsals), so the agent rolls it back.
const failingSelfTest = config.failSelfTest === true ? (done: (passed: boolean, reason?: string) => void) => done(false, "config.failSelfTest") : undefined;

const updater = createUpdater({
	status: (state, result) => call("report.status", state, result),
	progress: (received, total) => call("report.progress", received, total),
	result: (updateId, result, version, reason) => call("report.result", updateId, result, version, reason) === true,
	maintenance: (status, kind) => call("report.maintenance", status, kind),
	postponed: (next) => call("report.maintenance", "POSTPONED", "scheduled", next),
	shutDown: () => call("report.shutdown"),
	unreachable: (reason) => call("report.unreachable", reason),
}, failingSelfTest);
updater.start();

type Command =
	| { action: "update"; uri?: string; sha256?: string } & JobOptions
	| { action: "shutdown"; restart?: boolean }
	| { action: "maintenance"; settings: Partial<MaintenanceSettings> }
	| { action: "maintenance-start" | "maintenance-stop" };

listen(0, (command: Command) => {
	const { agent, maintenance } = updater;
	switch (command.action) {
		case "update": {
			const { uri, sha256, policy, severity, maxDeferSeconds } = command;
			return agent.request({ uri: uri ?? "", sha256: sha256 ? hexBytes(sha256) : undefined, automatic: true, policy, severity, maxDeferSeconds });
		}
		case "shutdown": return updater.shutdown(command.restart === true);
		case "maintenance": {
			const error = maintenance.configure(command.settings);
			if (error) call("log", `maintenance settings refused: ${error}`);
			return;
		}
		case "maintenance-start": return void maintenance.start();
		case "maintenance-stop": return void maintenance.stop();
	}
});

function hexBytes(hex: string): Uint8Array {
	const bytes = new Uint8Array(hex.length >> 1);
	for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(hex.substr(i * 2, 2), 16);
	return bytes;
}
