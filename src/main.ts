// Moddable entry: builds the agent from the board's ports and mc/config, starts it, and requests the
// package named by config.update (mcconfig -m -p esp32 update=https://host/app.bin) when it is new. With
// config.mqtt (mqtt://host:port, or mqtts://host[:8883] with a client certificate: platform/tls-credentials.ts) and
// config.thing it also follows that thing's AWS IoT jobs. Maintenance (windows, opt-out) starts from the
// persisted settings, or from config the first time.

import config from "mc/config";
import { Agent, type AgentListener, type SelfTest, defaultAgentOptions } from "./agent/agent";
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
import { Maintenance, type MaintenanceListener, type MaintenanceSettings, type MaintenanceTask, defaultMaintenanceOptions } from "./agent/maintenance";
import { ModdableRebootWarning } from "./platform/reboot-warning";
import { online } from "./platform/network-status";
import { awsMqttAlpn } from "./platform/tls-credentials";

function log(message: string): void {
	trace(`xs-ota: ${message}\n`);
}

function numberSetting(name: string, fallback: number): number {
	const value = Number(config[name]);
	return Number.isFinite(value) && value > 0 ? value : fallback;
}

export interface Updater {
	agent: Agent;
	maintenance: Maintenance;
	/** Connects to the jobs service (when configured), then restores and resumes, then runs on-boot maintenance. */
	start(): void;
	/** Orderly shutdown: the agent persists everything and disconnects; then the device restarts when asked. */
	shutdown(restart: boolean): void;
}

export type UpdaterListener = AgentListener & MaintenanceListener & {
	/** The jobs service refused the device for good (a "tls: " reason): nothing reconnects until a restart. */
	unreachable?(reason: string): void;
};

/** `appSelfTest` is the app's own check of a new image on its first boot, run after the transport's. */
export function createUpdater(listener: UpdaterListener, appSelfTest?: SelfTest): Updater {
	const slot = new ModdableFlashSlot(), boot = new EspBootControl(), clock = new ModdableClock(), store = new Preferences();
	const aws = createAwsUpdates(slot, boot, clock);
	const maintenance = new Maintenance({ clock, store, log, online }, {
		...defaultMaintenanceOptions,
		networkRetryMs: numberSetting("networkRetryMs", defaultMaintenanceOptions.networkRetryMs),
	}, listener);
	const ports = {
		slot,
		store,
		boot,
		clock,
		http: new ModdableHttpClient(),
		digest: new Sha256(),
		md5: new Md5(),
		signature: typeof config.publicKey === "string" && config.publicKey ? new P256Verifier(config.publicKey) : undefined,
		streams: aws?.streams,
		jobServer: aws?.jobServer,
		gate: maintenance,
		warning: new ModdableRebootWarning(store, typeof config.rebootWarningFile === "string" ? config.rebootWarningFile : ""),
		log,
	};
	const download = {
		...defaultAgentOptions.download,
		checkpointBytes: numberSetting("checkpointBytes", defaultAgentOptions.download.checkpointBytes),
		stallMs: numberSetting("stallMs", defaultAgentOptions.download.stallMs),
		backoffBaseMs: numberSetting("backoffBaseMs", defaultAgentOptions.download.backoffBaseMs),
	};
	const options = {
		...defaultAgentOptions, chipId: chipIdOf(String(config.chip ?? "esp32")), download, selfTest: chainSelfTests(aws?.selfTest, appSelfTest),
		rebootPersistence: config.rebootPersistence !== false && config.rebootPersistence !== "false",
		warningPollMs: numberSetting("warningPollMs", defaultAgentOptions.warningPollMs),
		maxDeferSeconds: numberSetting("maxDeferSeconds", defaultAgentOptions.maxDeferSeconds),
	};
	const shutDown = () => (aws?.stop(), listener.shutDown?.());
	const reporting: AgentListener = !aws ? { ...listener, shutDown } : {
		status: (state, result) => (listener.status(state, result), aws.status(state, result)),
		progress: (received, total) => (listener.progress(received, total), aws.progress(received, total)),
		// A job's result is held once the jobs service accepts it; other results as the app's listener says.
		result: (updateId, result, version, reason) => {
			const acknowledged = listener.result(updateId, result, version, reason);
			return agent.record.jobId ? aws.result(updateId, result, version, reason) : acknowledged;
		},
		shutDown,
	};
	const agent = new Agent(ports, options, reporting);
	if (aws) {
		aws.onRebootWarning = () => agent.shutdown();
		aws.onFailure = (reason) => listener.unreachable?.(reason);
	}
	maintenance.tasks = maintenanceTasks(agent, aws);
	return {
		agent,
		maintenance,
		start() {
			// Config gives the settings until the server or the app stores its own.
			const error = maintenance.load() ? undefined : maintenance.configure(configuredMaintenance());
			if (error) log(`maintenance settings in config ignored: ${error}`);
			aws?.start(agent);
			agent.start();
			maintenance.startOnBoot();
		},
		shutdown(restart) {
			maintenance.close();
			agent.shutdown();
			if (restart) boot.restart();
		},
	};
}

/** Check for updates (AWS jobs), then install what waits: the tasks maintenance runs, in order. */
function maintenanceTasks(agent: Agent, aws: AwsUpdates | undefined): MaintenanceTask[] {
	const install: MaintenanceTask = {
		name: "install",
		critical: () => agent.waitingSeverity === "critical",
		run(done) {
			const decision = agent.installDecision();
			if (decision === "held") return done("skipped");
			// The install reboots the device: the maintenance is complete before it starts.
			done("done");
			if (decision === "now") agent.update();
		},
	};
	if (!aws) return [install];
	const check: MaintenanceTask = { name: "check", critical: () => true, run: (done) => done(aws.checkForJobs() ? "done" : "failed") };
	return [check, install];
}

/** Settings mc/config gives: maintenanceStart, tz, maintenanceWindow, maintenanceMode, optOut. */
function configuredMaintenance(): Partial<MaintenanceSettings> {
	const changes: Partial<MaintenanceSettings> = {};
	if (typeof config.maintenanceStart === "string") changes.start = config.maintenanceStart;
	if (typeof config.tz === "string") changes.tz = config.tz;
	if (config.maintenanceWindow !== undefined) changes.windowMinutes = Number(config.maintenanceWindow);
	if (typeof config.maintenanceMode === "string") changes.mode = config.maintenanceMode as MaintenanceSettings["mode"];
	if (typeof config.optOut === "string") changes.optOut = config.optOut as MaintenanceSettings["optOut"];
	return changes;
}

/** The first self-test, then the second once the first has passed. */
function chainSelfTests(first: SelfTest | undefined, second: SelfTest | undefined): SelfTest | undefined {
	if (!first || !second) return first ?? second;
	return (done) => first((passed, reason) => (passed ? second(done) : done(false, reason)));
}

function createAwsUpdates(slot: ModdableFlashSlot, boot: EspBootControl, clock: ModdableClock): AwsUpdates | undefined {
	const broker = typeof config.mqtt === "string" ? /^(mqtts?):\/\/([^:/]+)(?::(\d+))?\/?$/.exec(config.mqtt) : null;
	const thing = typeof config.thing === "string" ? config.thing : "";
	if (!broker || !validThingName(thing)) {
		if (config.mqtt || config.thing) log("aws jobs off: config.mqtt must be mqtt[s]://host[:port] and config.thing a thing name");
		return undefined;
	}
	const secure = broker[1] === "mqtts";
	const port = Number(broker[3] ?? (secure ? 8883 : 1883));
	// AWS IoT Core takes MQTT with a client certificate on 443 only when offered this ALPN protocol.
	const alpn = typeof config.mqttAlpn === "string" ? config.mqttAlpn : port === 443 ? awsMqttAlpn : "";
	const format = config.streamFormat === "cbor" ? "cbor" : "json";
	return new AwsUpdates({ connector: new ModdableMqttConnector(), clock, log, slot, boot }, {
		jobs: {
			...defaultJobsOptions, host: broker[2], port, thing, random: Math.random, tls: secure ? { alpn } : undefined,
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
		maintenance: (status, kind) => log(`${kind} maintenance ${status}`),
		postponed: (next) => log(`scheduled maintenance postponed to ${next}`),
		status: (state, result) => log(`State ${state} (${stateNames[state]}), Update Result ${result} (${resultNames[result]})`),
		progress: (received, total) => log(`${received} of ${total} bytes`),
		// No LwM2M client in this app: the log is the report, and it is always "acknowledged".
		result: (updateId, result, version, reason) => (log(`update ${updateId} ended: ${resultNames[result]} ${version}${reason ? ` (${reason})` : ""}`), true),
		unreachable: (reason) => log(`aws iot jobs stopped: ${reason}`),
	});
	start();
	const update = typeof config.update === "string" ? config.update : "";
	if (update && update !== agent.packageUri && agent.state === 0)
		agent.request({ uri: update, automatic: true });
}
