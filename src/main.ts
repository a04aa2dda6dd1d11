// Moddable entry: builds the agent from the board's ports and mc/config, starts it, and requests the
// package named by config.update (mcconfig -m -p esp32 update=http://host/app.bin) when it is new.

import config from "mc/config";
import { Agent, type AgentListener, defaultAgentOptions } from "./agent/agent";
import { resultNames, stateNames } from "./agent/firmware-object";
import { chipIdOf } from "./agent/image";
import { EspBootControl } from "./platform/boot-control";
import { ModdableClock } from "./platform/clock";
import { Sha256 } from "./platform/digest";
import { ModdableFlashSlot } from "./platform/flash-slot";
import { ModdableHttpClient } from "./platform/http-client";
import { Preferences } from "./platform/preferences";

function log(message: string): void {
	trace(`xs-ota: ${message}\n`);
}

function numberSetting(name: string, fallback: number): number {
	const value = Number(config[name]);
	return Number.isFinite(value) && value > 0 ? value : fallback;
}

export function createAgent(listener: AgentListener): Agent {
	const ports = {
		slot: new ModdableFlashSlot(),
		store: new Preferences(),
		boot: new EspBootControl(),
		clock: new ModdableClock(),
		http: new ModdableHttpClient(),
		digest: new Sha256(),
		log,
	};
	const download = {
		...defaultAgentOptions.download,
		checkpointBytes: numberSetting("checkpointBytes", defaultAgentOptions.download.checkpointBytes),
		stallMs: numberSetting("stallMs", defaultAgentOptions.download.stallMs),
		backoffBaseMs: numberSetting("backoffBaseMs", defaultAgentOptions.download.backoffBaseMs),
	};
	const options = { ...defaultAgentOptions, chipId: chipIdOf(String(config.chip ?? "esp32")), download };
	return new Agent(ports, options, listener);
}

export default function main(): void {
	const agent = createAgent({
		status: (state, result) => log(`State ${state} (${stateNames[state]}), Update Result ${result} (${resultNames[result]})`),
		progress: (received, total) => log(`${received} of ${total} bytes`),
		// No LwM2M client in this app: the log is the report, and it is always "acknowledged".
		result: (updateId, result, version) => (log(`update ${updateId} ended: ${resultNames[result]} ${version}`), true),
	});
	agent.start();
	const update = typeof config.update === "string" ? config.update : "";
	if (update && update !== agent.packageUri && agent.state === 0)
		agent.request({ uri: update, automatic: true });
}
