// Moddable entry: builds the agent from the board's ports and mc/config, starts it, and requests the
// package named by config.update (mcconfig -m -p esp32 update=https://host/app.bin) when it is new. With
// config.mqtt (mqtt://host:port, or mqtts://host[:8883] with a client certificate: platform/tls-credentials.ts) and
// config.thing it also follows that thing's AWS IoT jobs. With config.lwm2m (coap://host[:port], or
// coaps://host[:port] over DTLS with the provisioned PSK) and config.endpoint it registers with that LwM2M
// server, which drives updates through Object 5; with config.bootstrap (coap://host[:port]) a Bootstrap-Server
// provisions that server. Package URIs may be http(s):// or coap[s]://. Maintenance (windows, opt-out) starts from the persisted settings, or from config
// the first time.

import config from "mc/config";
import { Agent, type AgentListener, type SelfTest, defaultAgentOptions } from "./agent/agent";
import { Result, resultNames, stateNames } from "./agent/firmware-object";
import { chipIdOf } from "./agent/image";
import { EspBootControl } from "./platform/boot-control";
import { ModdableClock } from "./platform/clock";
import { Sha256 } from "./platform/digest";
import { ModdableFlashSlot } from "./platform/flash-slot";
import { ModdableRunningImage } from "./platform/running-image";
import { ModdableHttpClient } from "./platform/http-client";
import { Preferences } from "./platform/preferences";
import { Md5 } from "./platform/digest";
import { ModdableMqttConnector } from "./platform/mqtt-client";
import { NativeKeyVerifier, P256Verifier } from "./platform/signature";
import { ImageTrust, parseKeyDigests } from "./agent/image-trust";
import { validThingName } from "./agent/job-document";
import { defaultJobsOptions } from "./transport/aws-jobs";
import { defaultStreamOptions } from "./transport/aws-stream";
import { AwsUpdates } from "./transport/aws-updates";
import { Maintenance, type MaintenanceListener, type MaintenanceSettings, type MaintenanceTask, defaultMaintenanceOptions } from "./agent/maintenance";
import { ModdableRebootWarning } from "./platform/reboot-warning";
import { online } from "./platform/network-status";
import { awsMqttAlpn, pskCredentials } from "./platform/tls-credentials";
import { dtlsCrypto } from "./platform/dtls-crypto";
import { DtlsUdpOpener } from "./dtls/socket";
import { type DtlsOptions, defaultDtlsOptions } from "./dtls/session";
import { udp } from "./platform/udp-socket";
import { CoapEndpoint, type CoapReply, type CoapRequest, type EndpointOptions, defaultEndpointOptions, maxTransmitWaitMs } from "./coap/endpoint";
import { Code } from "./coap/message";
import { CoapPull } from "./transport/coap-pull";
import { PackagePush } from "./transport/package-push";
import { Lwm2mClient, type Lwm2mPorts } from "./lwm2m/client";
import { type ServerSettings, deviceObject, minLifetime, securityObject, serverObject } from "./lwm2m/device-objects";
import { FirmwareUpdateObject } from "./lwm2m/firmware-update";
import type { DownloadListener } from "./transport/transfer";
import type { DownloadRecord } from "./agent/record";
import type { PatchPorts } from "./delta/patch-sink";
import type { Url } from "./platform/ports";

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
	/** Orderly shutdown: the agent persists everything and disconnects; then the device restarts when asked (else an LwM2M client de-registers). */
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
	const maintenanceOptions = { ...defaultMaintenanceOptions, networkRetryMs: numberSetting("networkRetryMs", defaultMaintenanceOptions.networkRetryMs) };
	const maintenance = new Maintenance({ clock, store, log, online }, maintenanceOptions, listener);
	const chipId = chipIdOf(String(config.chip ?? "esp32"));
	const running = new ModdableRunningImage();
	const ports = {
		slot,
		running,
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
		trust: new ImageTrust({ running, keys: new NativeKeyVerifier(), digest: new Sha256(), log }, {
			requireSignature: config.requireSignature === true || config.requireSignature === "true",
			trustedKeys: parseKeyDigests(String(config.trustedKeys ?? "")),
			revokedKeys: parseKeyDigests(String(config.revokedKeys ?? "")),
		}, chipId),
		coap: { open: (record: DownloadRecord, url: Url, listener: DownloadListener, patch: PatchPorts | undefined) => new CoapPull({ coap: url.scheme === "coaps" ? openCoaps() : openCoap(), udp, slot, clock, log, patch }, download, record, url, listener) },
		push: { open: (record: DownloadRecord, listener: DownloadListener, patch: PatchPorts | undefined) => new PackagePush({ slot, clock, log, patch }, numberSetting("pushSilenceMs", 120000), 1024, record, listener) },
		log,
	};
	// One CoAP endpoint serves the LwM2M client (a coap:// server) and coap:// pulls. It exists (with its message buffer) only once
	// one of them needs it, and its socket opens then: a device without LwM2M that never pulls over CoAP never
	// holds it.
	let lwm2m: Lwm2mClient | undefined;
	/** The orderly shutdown under way ends in a power-off, not a restart. */
	let poweringOff = false;
	let coap: CoapEndpoint | undefined;
	const endpointOptions = coapOptions();
	const requests = { request: (request: CoapRequest, reply: (response: CoapReply) => void) => (lwm2m ? lwm2m.request(request, reply) : reply({ code: Code.notFound })) };
	const openCoap = (): CoapEndpoint => {
		coap ??= new CoapEndpoint({ udp, clock, log }, endpointOptions, requests);
		if (!coap.isOpen) coap.open(0);
		return coap;
	};
	// coaps:// goes through a second endpoint, whose datagrams DTLS protects (src/dtls): a coaps:// LwM2M
	// server's and coaps:// pulls. It too exists only once something asks for it.
	const lwm2mSecure = typeof config.lwm2m === "string" && config.lwm2m.startsWith("coaps:");
	let coaps: CoapEndpoint | undefined;
	const openCoaps = (): CoapEndpoint => {
		coaps ??= new CoapEndpoint({ udp: new DtlsUdpOpener({ udp, crypto: dtlsCrypto, clock, log, credentials: pskCredentials }, dtlsOptions()), clock, log }, endpointOptions, requests);
		if (!coaps.isOpen) coaps.open(0);
		return coaps;
	};
	const download = {
		...defaultAgentOptions.download,
		checkpointBytes: numberSetting("checkpointBytes", defaultAgentOptions.download.checkpointBytes),
		stallMs: numberSetting("stallMs", defaultAgentOptions.download.stallMs),
		backoffBaseMs: numberSetting("backoffBaseMs", defaultAgentOptions.download.backoffBaseMs),
	};
	const lwm2mSelfTest: SelfTest = (done) => (lwm2m ? lwm2m.selfTest(done) : done(true));
	const options = {
		...defaultAgentOptions, chipId, download,
		selfTest: chainSelfTests(aws?.selfTest, chainSelfTests(typeof config.lwm2m === "string" || typeof config.bootstrap === "string" ? lwm2mSelfTest : undefined, appSelfTest)),
		rebootPersistence: config.rebootPersistence !== false && config.rebootPersistence !== "false",
		warningPollMs: numberSetting("warningPollMs", defaultAgentOptions.warningPollMs),
		maxDeferSeconds: numberSetting("maxDeferSeconds", defaultAgentOptions.maxDeferSeconds),
	};
	const reporting: AgentListener = {
		status: (state, result) => (listener.status(state, result), aws?.status(state, result), lwm2m?.changed([5])),
		progress: (received, total) => (listener.progress(received, total), aws?.progress(received, total)),
		// A job's result is held once the jobs service accepts it, an LwM2M result once its server took it;
		// other results as the app's listener says.
		result: (updateId, result, version, reason) => {
			const acknowledged = listener.result(updateId, result, version, reason);
			if (aws && agent.record.jobId) return aws.result(updateId, result, version, reason);
			if (!lwm2m) return acknowledged;
			lwm2m.reportResult(updateId);
			return false;
		},
		// A power-off de-registers (LwM2M Core §6.2.3; Wakaama and Anjay do so when closed). A reboot — Execute
		// Reboot, an install, a reboot warning — keeps the session: the next boot updates the registration and the
		// server keeps its observations. Either way the endpoint closes, its retransmissions with it: nothing
		// outstanding outlives the shutdown.
		shutDown: () => {
			aws?.stop();
			const [held, other] = lwm2mSecure ? [coaps, coap] : [coap, coaps];
			other?.close();
			held?.abandon();
			if (lwm2m) lwm2m.stop(poweringOff, () => held?.close());
			else held?.close();
			listener.shutDown?.();
		},
	};
	const agent = new Agent(ports, options, reporting);
	lwm2m = createLwm2m(agent, boot, lwm2mSecure ? openCoaps : openCoap, { udp, clock, store, log }, options.maxDeferSeconds, () => updater.shutdown(true));
	if (aws) {
		aws.onRebootWarning = () => agent.shutdown();
		aws.onFailure = (reason) => listener.unreachable?.(reason);
	}
	// The check waits for the jobs connection as long as maintenance waits for the network.
	maintenance.tasks = maintenanceTasks(agent, aws, maintenanceOptions.networkTries * maintenanceOptions.networkRetryMs);
	const updater: Updater = {
		agent,
		maintenance,
		start() {
			// Config gives the settings until the server or the app stores its own.
			const error = maintenance.load() ? undefined : maintenance.configure(configuredMaintenance());
			if (error) log(`maintenance settings in config ignored: ${error}`);
			aws?.start(agent);
			lwm2m?.start();
			agent.start();
			maintenance.startOnBoot();
		},
		shutdown(restart) {
			poweringOff = !restart;
			maintenance.close();
			agent.shutdown();
			if (restart) boot.restart();
		},
	};
	return updater;
}

function coapOptions(): EndpointOptions {
	return { ...defaultEndpointOptions, ackTimeoutMs: numberSetting("coapAckTimeoutMs", defaultEndpointOptions.ackTimeoutMs) };
}

/** RFC 6347's timer, or config.dtlsTimeoutMs as its first wait (a faster give-up on a silent server, for tests). */
function dtlsOptions(): DtlsOptions {
	return { ...defaultDtlsOptions, initialTimeoutMs: numberSetting("dtlsTimeoutMs", defaultDtlsOptions.initialTimeoutMs) };
}

/** The LwM2M client config.lwm2m or config.bootstrap, and config.endpoint, ask for, or undefined. */
function createLwm2m(agent: Agent, boot: EspBootControl, openCoap: () => CoapEndpoint, others: Omit<Lwm2mPorts, "coap">, maxDeferSeconds: number, reboot: () => void): Lwm2mClient | undefined {
	const serverUri = typeof config.lwm2m === "string" ? config.lwm2m : "";
	const bootstrapUri = typeof config.bootstrap === "string" ? config.bootstrap : "";
	const endpoint = typeof config.endpoint === "string" ? config.endpoint : "";
	if (!serverUri && !bootstrapUri) return undefined;
	if (!/^[\x21-\x7e]{1,64}$/.test(endpoint) || /[&=?]/.test(endpoint)) {
		log("lwm2m off: config.endpoint must be 1 to 64 visible characters without & = ?");
		return undefined;
	}
	const ports: Lwm2mPorts = { ...others, coap: openCoap() };
	const queueMode = config.queueMode === true || config.queueMode === "true";
	const lifetime = numberSetting("lifetime", 300);
	if (lifetime < minLifetime) log(`lwm2m lifetime ${lifetime} s raised to ${minLifetime} s`);
	const settings: ServerSettings = {
		serverUri, shortServerId: 1, lifetime: Math.max(minLifetime, Math.floor(lifetime)), minPeriod: numberSetting("pmin", 0) | 0, maxPeriod: numberSetting("pmax", 0) | 0,
	};
	const firmware = new FirmwareUpdateObject(agent, maxDeferSeconds, (action) => ports.clock.setTimeout(action, 200));
	const device = deviceObject({
		manufacturer: typeof config.manufacturer === "string" ? config.manufacturer : "xs-ota",
		model: String(config.model ?? config.chip ?? "esp32"),
		serial: typeof config.serial === "string" ? config.serial : endpoint,
		firmwareVersion: () => boot.runningVersion(),
		// Error codes (Object 3, resource 11): 5 out of memory, 7 IP connectivity failure, 0 none.
		errorCodes: () => [agent.result === Result.outOfRam ? 5 : agent.result === Result.connectionLost ? 7 : 0],
		now: () => ports.clock.now(),
		// The reply goes out first: the orderly shutdown and restart run a moment later.
		reboot: () => ports.clock.setTimeout(reboot, 200),
	});
	const client: Lwm2mClient = new Lwm2mClient(ports, [
		securityObject(settings, pskCredentials),
		serverObject(settings, () => client.settingsChanged(), () => client.updateRegistration()),
		device,
		firmware,
	], firmware, settings, {
		endpoint, retryBaseMs: numberSetting("registrationRetryMs", 4000), retryMaxMs: 600000, maxMessageBytes: defaultEndpointOptions.maxMessageBytes,
		// A Bootstrap-Server that goes silent is asked again after EXCHANGE_LIFETIME (RFC 7252: 247 s).
		bootstrap: bootstrapUri ? { uri: bootstrapUri, timeoutMs: numberSetting("bootstrapTimeoutMs", 247000) } : undefined,
		// Queue Mode listens MAX_TRANSMIT_WAIT after each exchange unless config.queueWait (s) says otherwise.
		queueWaitMs: queueMode ? numberSetting("queueWait", maxTransmitWaitMs(coapOptions()) / 1000) * 1000 : 0,
	}, { acknowledged: (updateId) => agent.acknowledgeResult(updateId) });
	return client;
}

/** Check for updates (AWS jobs), then install what waits: the tasks maintenance runs, in order. */
function maintenanceTasks(agent: Agent, aws: AwsUpdates | undefined, connectionWaitMs: number): MaintenanceTask[] {
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
	const check: MaintenanceTask = {
		name: "check",
		critical: () => true,
		run: (done) => aws.checkForJobs(connectionWaitMs, (checked) => done(checked ? "done" : "failed")),
	};
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
