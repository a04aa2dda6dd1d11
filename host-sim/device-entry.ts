// The simulated board's firmware: the real agent (src/main.ts's createUpdater, on the emulated Moddable
// modules, with AWS IoT jobs when config names a broker and a thing) plus the stand-in for an LwM2M server's writes, which the board delivers as events on id 0.

import { createUpdater } from "../src/main";
import { call, dispatch, listen } from "./modules/host";

declare const globalThis: { deviceDeliver?: (event: { id: number }, data: ArrayBuffer | undefined) => void; trace?: (...values: unknown[]) => void };

globalThis.trace = (...values: unknown[]) => call("log", values.join("").replace(/\n$/, ""));
globalThis.deviceDeliver = dispatch;

const { agent, start } = createUpdater({
	status: (state, result) => call("report.status", state, result),
	progress: (received, total) => call("report.progress", received, total),
	result: (updateId, result, version) => call("report.result", updateId, result, version) === true,
});
start();

listen(0, (command: { action: string; uri?: string; sha256?: string; policy?: number }) => {
	if (command.action === "update") {
		const sha256 = command.sha256 ? hexBytes(command.sha256) : undefined;
		agent.request({ uri: command.uri ?? "", sha256, automatic: true, policy: command.policy as 0 | 1 | 2 | 3 | undefined });
	}
});

function hexBytes(hex: string): Uint8Array {
	const bytes = new Uint8Array(hex.length >> 1);
	for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(hex.substr(i * 2, 2), 16);
	return bytes;
}
