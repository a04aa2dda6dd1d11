// Moddable entry: builds the agent from the board's ports and mc/config, starts it, and requests the
// package named by config.update (mcconfig -m -p esp32 update=http://host/app.bin) when it is new. With
// config.mqtt (mqtt://host:port) and config.thing it also follows that thing's AWS IoT jobs.

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
import { Md5 } from "./platform/digest";
import { ModdableMqttConnector } from "./platform/mqtt-client";
import { P256Verifier } from "./platform/signature";
import { validThingName } from "./agent/job-document";
import { defaultJobsOptions } from "./transport/aws-jobs";
import { defaultStreamOptions } from "./transport/aws-stream";
import { AwsUpdates } from "./transport/aws-updates";

function log(message: string): void {
	trace(`xs-ota: ${message}\n`);
}

function numberSetting(name: string, fallback: number): number {
	const value = Number(config[name]);
	return Number.isFinite(value) && value > 0 ? value : fallback;
}

export interface Updater {
	agent: Agent;
	/** Connects to the jobs service (when configured), then restores and resumes. */
	start(): void;
}

export function createUpdater(listener: AgentListener): Updater {
	const slot = new ModdableFlashSlot(), boot = new EspBootControl(), clock = new ModdableClock();
	const aws = createAwsUpdates(slot, boot, clock);
	const ports = {
		slot,
		store: new Preferences(),
		boot,
		clock,
		http: new ModdableHttpClient(),
		digest: new Sha256(),
		md5: new Md5(),
		signature: typeof config.publicKey === "string" && config.publicKey ? new P256Verifier(config.publicKey) : undefined,
		streams: aws?.streams,
		log,
	};
	const download = {
		...defaultAgentOptions.download,
		checkpointBytes: numberSetting("checkpointBytes", defaultAgentOptions.download.checkpointBytes),
		stallMs: numberSetting("stallMs", defaultAgentOptions.download.stallMs),
		backoffBaseMs: numberSetting("backoffBaseMs", defaultAgentOptions.download.backoffBaseMs),
	};
	const options = { ...defaultAgentOptions, chipId: chipIdOf(String(config.chip ?? "esp32")), download, selfTest: aws?.selfTest };
	const reporting: AgentListener = !aws ? listener : {
		status: (state, result) => (listener.status(state, result), aws.status(state, result)),
		progress: (received, total) => (listener.progress(received, total), aws.progress(received, total)),
		// A job's result is held once the jobs service accepts it; other results as the app's listener says.
		result: (updateId, result, version) => {
			const acknowledged = listener.result(updateId, result, version);
			return agent.record.jobId ? aws.result(updateId, result, version) : acknowledged;
		},
	};
	const agent = new Agent(ports, options, reporting);
	return {
		agent,
		start() {
			aws?.start(agent);
			agent.start();
		},
	};
}

function createAwsUpdates(slot: ModdableFlashSlot, boot: EspBootControl, clock: ModdableClock): AwsUpdates | undefined {
	const broker = typeof config.mqtt === "string" ? /^mqtt:\/\/([^:/]+)(?::(\d+))?\/?$/.exec(config.mqtt) : null;
	const thing = typeof config.thing === "string" ? config.thing : "";
	if (!broker || !validThingName(thing)) {
		if (config.mqtt || config.thing) log("aws jobs off: config.mqtt must be mqtt://host[:port] and config.thing a thing name");
		return undefined;
	}
	const format = config.streamFormat === "cbor" ? "cbor" : "json";
	return new AwsUpdates({ connector: new ModdableMqttConnector(), clock, log, slot, boot }, {
		jobs: {
			...defaultJobsOptions, host: broker[1], port: Number(broker[2] ?? 1883), thing, random: Math.random,
			reconnectBaseMs: numberSetting("reconnectBaseMs", defaultJobsOptions.reconnectBaseMs),
			retryMs: numberSetting("statusRetryMs", defaultJobsOptions.retryMs),
			tokenPrefix: `${thing.slice(0, 32)}-${clock.ticks().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`,
		},
		stream: {
			...defaultStreamOptions, format,
			blockTimeoutMs: numberSetting("blockTimeoutMs", defaultStreamOptions.blockTimeoutMs),
			checkpointBytes: numberSetting("checkpointBytes", defaultStreamOptions.checkpointBytes),
		},
		blockSize: numberSetting("blockSize", 4096),
		allowDowngrade: config.allowDowngrade === true || config.allowDowngrade === "true",
		progressIntervalMs: numberSetting("progressIntervalMs", 10000),
	});
}

export default function main(): void {
	const { agent, start } = createUpdater({
		status: (state, result) => log(`State ${state} (${stateNames[state]}), Update Result ${result} (${resultNames[result]})`),
		progress: (received, total) => log(`${received} of ${total} bytes`),
		// No LwM2M client in this app: the log is the report, and it is always "acknowledged".
		result: (updateId, result, version) => (log(`update ${updateId} ended: ${resultNames[result]} ${version}`), true),
	});
	start();
	const update = typeof config.update === "string" ? config.update : "";
	if (update && update !== agent.packageUri && agent.state === 0)
		agent.request({ uri: update, automatic: true });
}
