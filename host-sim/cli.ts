/*
	xs-ota command line:
	  xs-ota image  --out FILE --size BYTES --version VERSION [--chip esp32] [--secure-version N] [--sign KEY.PEM[,KEY.PEM…]]
	                [--secure-pad-v2]  (a padding segment: the image ends on a 64 KiB page, as ESP-IDF builds signed apps)
	                (--sign: padded to a 4 KiB sector plus a Secure Boot v2 signature sector; prints each key digest)
	  xs-ota serve  --dir DIR --port PORT [--tls-cert CHAIN.PEM --tls-key KEY.PEM]     (https with --tls-*)
	  xs-ota serve  --mqtt [--port PORT] [--tls-cert CHAIN.PEM --tls-key KEY.PEM [--client-ca CA.PEM] [--alpn PROTO]]
	                (AWS IoT Jobs + MQTT streams emulator on an aedes broker; mqtts with --tls-*)
	  xs-ota serve  --lwm2m [--port PORT] [--file PACKAGE] [--bootstrap [--bootstrap-port PORT] | --psk-identity ID --psk-key HEX]
	                (local LwM2M server over CoAP/UDP, NoSec, or DTLS with that PSK; with --file also a CoAP package server
	                 for PACKAGE; with --bootstrap also a Bootstrap-Server that provisions it)
	  xs-ota job create --mqtt URL --thing NAME --image FILE --form afr_ota|fota [--stream-format json|cbor]
	                [--job-id ID] [--file-id N] [--block-size N] [--version V] [--signature BASE64]
	  xs-ota device --dir DIR [--engine node|xs] [--url URL] [--sha256 HEX] [--policy save-point|restart|abort|none]
	                [--cut-after-ops N] [--json] [--clock ISO-TIME] [--run-for DURATION] [--reboot-warning FILE]
	                [--mqtt mqtt[s]://HOST:PORT --thing NAME] [--mqtt-alpn PROTO]
	                [--lwm2m coap[s]://HOST:PORT] [--bootstrap coap://HOST:PORT] --endpoint NAME [--lifetime SECONDS]
	                [--queue [--queue-wait SECONDS]]
	                (an LwM2M server drives it; a Bootstrap-Server may provision that server; --queue: LwM2M Queue Mode)
	                [--ca FILE] [--mqtt-ca FILE] [--client-cert FILE --client-key FILE]
	                [--psk-identity ID --psk-key HEX] [--provision]
	                (PEM or DER; built into the board's app as resources, or with --provision written to its NVS)
	                [--severity critical|major|minor] [--max-defer SECONDS] [--no-reboot-persistence]
	                [--maintenance HH:MM --tz POSIX-TZ|IANA --window MINUTES --mode foreground|background
	                 --opt-out none|ignore-update|bypass-optout|enforce-optout]   (replace the stored settings)
	                SIGINT/SIGTERM shut the device down in order (it persists, then the run ends)
	  xs-ota fleet  --config DEV.INI --target sim|aws [--things FILE | --boards N] [--image FILE] [--out DIR] [faults…]
	  xs-ota fleet monitor --config DEV.INI [--target aws|sim] [--out DIR] [--interval S] [--once]
	                (see tools/fleet/command.ts)
	  xs-ota demo   [--engine node|xs] [--lwm2m]  (what npm start runs; npm start -- --lwm2m)
	Each command's flags are declared once (commandSpecs): --help/-h prints them, an unknown one is refused with
	the nearest as a hint. Exit codes: 0 done; 1 the command failed (bad input, refused configuration);
	2 a usage mistake (unknown command or flag, a flag left out, without its value or with one it does not take);
	fleet and its monitor add 3 and 4. System errors (ENOENT, EADDRINUSE, …) are said as sentences (system-error.ts).
*/

import * as fs from "node:fs";
import type { DeviceCommand, DeviceReport, EngineName, PolicyName } from "./device";
import { chipIds, makeAppImage, maxVersionBytes } from "./image";
import { keyDigestOf, signImage } from "./signing";
import { compressionNames, createPatch, heatshrinkProblem, type CompressionName } from "./delta/create-patch";
import type { Lwm2mServer } from "./server/lwm2m-server";
import { Lwm2mUpdate } from "./server/lwm2m-update";
import { fleetCommand, fleetSpec, monitorCommand, monitorSpec } from "../tools/fleet/command";
import { HelpRequest, parseFlags, UsageError, nearest, type CommandSpec, type Flags } from "./flags";
import { certificateDer, privateKeyDer, type Credentials } from "./credentials";
import type { ServerTls } from "./server/server-tls";
import { checkMaintenanceSettings, defaultMaintenanceSettings, type MaintenanceSettings } from "../src/agent/maintenance";
import { type SeverityName, severityNames } from "../src/agent/job-list";
import { posixTimeZone } from "./zoneinfo";
import { sentence } from "./system-error";
import { ConsoleReport } from "./console-report";
import { isFailure, resultNames, stateNames, type ResultCode, type StateCode } from "../src/agent/firmware-object";

/** xs-ota device --exit-code: the update failed. */
const updateFailedExitCode = 3;

function text(flags: Flags, name: string, required = true): string | undefined {
	const value = flags[name];
	if (value === undefined && !required) return undefined;
	if (value === undefined) throw new UsageError(`--${name} is required`);
	if (typeof value !== "string" || !value) throw new UsageError(`--${name} needs a value`);
	return value;
}

function integer(flags: Flags, name: string, required = true): number | undefined {
	const value = text(flags, name, required);
	if (value === undefined) return undefined;
	if (!/^\d+$/.test(value)) throw new UsageError(`--${name} must be a whole number`);
	return Number(value);
}

/** --port (or another port flag): 1 to 65535 (optional ones: the server picks a free port when absent). */
function port(flags: Flags, required: boolean, name = "port"): number | undefined {
	const value = integer(flags, name, required);
	if (value !== undefined && (value < 1 || value > 65535)) throw new UsageError(`--${name} takes 1 to 65535, not ${value}`);
	return value;
}

async function image(flags: Flags): Promise<void> {
	const chip = (text(flags, "chip", false) ?? "esp32") as keyof typeof chipIds;
	if (!(chip in chipIds)) throw new UsageError(`--chip is ${Object.keys(chipIds).join(", ")}`);
	const version = text(flags, "version")!;
	if (Buffer.byteLength(version) > maxVersionBytes) throw new UsageError(`--version takes at most ${maxVersionBytes} bytes (ESP-IDF's app description holds 32 with the NUL)`);
	const bytes = makeAppImage({ size: integer(flags, "size")!, version, chip, secureVersion: integer(flags, "secure-version", false), securePad: flags["secure-pad-v2"] === true });
	const keyFiles = optionalText(flags, "sign")?.split(",");
	if (!keyFiles) return fs.writeFileSync(text(flags, "out")!, bytes);
	const keys = keyFiles.map((file) => fs.readFileSync(file));
	fs.writeFileSync(text(flags, "out")!, signImage(bytes, keys));
	keys.forEach((key, index) => console.log(`key digest ${Buffer.from(keyDigestOf(key)).toString("hex")}  ${keyFiles[index]}`));
}

async function patch(flags: Flags): Promise<void> {
	const compression = (text(flags, "compression", false) ?? "heatshrink") as CompressionName;
	if (!compressionNames.includes(compression)) throw new UsageError(`--compression is ${compressionNames.join(", ")} (lzma, bz2, zstd and lz4 are not applied on the device)`);
	const windowBits = integer(flags, "heatshrink-window", false), lookaheadBits = integer(flags, "heatshrink-lookahead", false);
	if ((windowBits !== undefined || lookaheadBits !== undefined) && compression !== "heatshrink") throw new UsageError("--heatshrink-window and --heatshrink-lookahead go with --compression heatshrink");
	const problem = heatshrinkProblem(windowBits ?? 8, lookaheadBits ?? 7);
	if (problem) throw new UsageError(`--heatshrink-window/--heatshrink-lookahead: ${problem}`);
	const from = optionalText(flags, "from"), framed = flags["esp-delta-ota"] === true;
	if (framed && from === undefined) throw new UsageError("--esp-delta-ota names the base image: it needs --from");
	const next = new Uint8Array(fs.readFileSync(text(flags, "to")!));
	const base = from === undefined ? new Uint8Array(0) : new Uint8Array(fs.readFileSync(from));
	const out = text(flags, "out")!;
	const bytes = createPatch(base, next, { compression, windowBits, lookaheadBits, framing: framed ? "esp-delta-ota" : undefined });
	fs.writeFileSync(out, bytes);
	const share = (100 * bytes.length / next.length).toFixed(1);
	console.log(`${out}: ${bytes.length} bytes, ${share} % of the ${next.length}-byte image (${from === undefined ? "a compressed full image" : `a patch from ${from}`}, ${compression})`);
}

/** --tls-cert and --tls-key (and for MQTT --client-ca, --alpn): the server's TLS, or none. */
function serverTls(flags: Flags, mqtt: boolean): ServerTls | undefined {
	const certPem = optionalText(flags, "tls-cert"), keyPem = optionalText(flags, "tls-key");
	if ((certPem === undefined) !== (keyPem === undefined)) throw new UsageError("--tls-cert and --tls-key go together");
	const clientCaPem = mqtt ? optionalText(flags, "client-ca") : undefined, alpn = mqtt ? optionalText(flags, "alpn") : undefined;
	if (certPem === undefined) {
		if (clientCaPem !== undefined || alpn !== undefined) throw new UsageError("--client-ca and --alpn need --tls-cert and --tls-key");
		return undefined;
	}
	return { certPem, keyPem: keyPem!, clientCaPem, alpn: alpn === undefined ? undefined : [alpn] };
}

async function serve(flags: Flags): Promise<void> {
	if (flags.mqtt === true) return serveMqtt(flags);
	if (flags.lwm2m === true) return serveLwm2m(flags);
	const { startUpdateServer } = await import("./server/http-server");
	const server = await startUpdateServer({ dir: text(flags, "dir")!, port: port(flags, true)!, tls: serverTls(flags, false) });
	console.log(`serving ${flags.dir} at ${server.url}`);
	const stop = () => void server.close().then(() => process.exit(0));
	process.on("SIGINT", stop);
	process.on("SIGTERM", stop);
}

async function serveMqtt(flags: Flags): Promise<void> {
	const { startAwsIot } = await import("./server/aws-iot");
	const emulator = await startAwsIot({ port: port(flags, false), tls: serverTls(flags, true) });
	console.log(`aws iot jobs and streams emulator at ${emulator.url}`);
	const stop = () => void emulator.close().then(() => process.exit(0));
	process.on("SIGINT", stop);
	process.on("SIGTERM", stop);
}

async function serveLwm2m(flags: Flags): Promise<void> {
	const file = optionalText(flags, "file");
	const endpoint = optionalText(flags, "update"), packageUri = optionalText(flags, "package-uri"), push = flags.push === true;
	if (endpoint !== undefined && (file === undefined) === (packageUri === undefined)) throw new UsageError("--update takes the package from --file or --package-uri (one of them)");
	if ((packageUri !== undefined || push) && endpoint === undefined) throw new UsageError("--package-uri and --push go with --update ENDPOINT");
	if (push && file === undefined) throw new UsageError("--push sends the --file package");
	const bytes = file === undefined ? undefined : fs.readFileSync(file);
	const filePath = file === undefined ? undefined : "/" + encodeURIComponent(file.split("/").pop()!);
	const bootstrapPort = port(flags, false, "bootstrap-port");
	if (bootstrapPort !== undefined && flags.bootstrap !== true) throw new UsageError("--bootstrap-port goes with --bootstrap");
	const psk = pskFlags(flags);
	// The device's bootstrap takes NoSec accounts only.
	if (psk && flags.bootstrap === true) throw new UsageError("--bootstrap provisions a NoSec server: not with --psk-identity");
	const [{ Lwm2mServer }, { Lwm2mBootstrapServer }, { CoapFileServer }] = await Promise.all([
		import("./server/lwm2m-server"), import("./server/lwm2m-bootstrap"), import("./server/coap-file-server"),
	]);
	const server = await Lwm2mServer.start({ port: port(flags, false), log: (line) => console.log(line), psk });
	console.log(`lwm2m server at ${server.url} (registrations at /rd${psk ? `, DTLS with the key of identity ${psk.identity}` : ""})`);
	const bootstrap = flags.bootstrap === true ? await Lwm2mBootstrapServer.start({ serverUri: server.url, port: bootstrapPort, log: (line) => console.log(line) }) : undefined;
	if (bootstrap) console.log(`lwm2m bootstrap-server at ${bootstrap.url} (provisions ${server.url})`);
	const files = bytes && await CoapFileServer.start({ psk });
	if (files) {
		files.serve(filePath!, bytes!);
		console.log(`serving ${file} at ${files.url(filePath!)}`);
	}
	const stop = (code: number) => void Promise.all([server.close(), bootstrap?.close(), files?.close()]).then(() => process.exit(code));
	process.on("SIGINT", () => stop(0));
	process.on("SIGTERM", () => stop(0));
	if (endpoint !== undefined) driveUpdate(server, endpoint, packageUri ?? (push ? undefined : files!.url(filePath!)), push ? bytes : undefined, stop);
}

/**
	serve --lwm2m --update ENDPOINT: the server's side of one update, as a management application runs it (lwm2m-update.ts):
	once ENDPOINT registers, observe State and Update Result, write the Package URI (or push the package), execute
	Update when the device reports Downloaded; then end with 0 on success, 3 on a failed update.
*/
function driveUpdate(server: Lwm2mServer, endpoint: string, uri: string | undefined, pushed: Buffer | undefined, stop: (code: number) => void): void {
	console.log(`waiting for ${endpoint} to register, then ${uri ? `writing Package URI ${uri}` : "pushing the package to /5/0/0"}`);
	server.on("notify", (event) => {
		if (event.endpoint !== endpoint) return;
		const value = Number(event.value);
		const name = event.path === "/5/0/3" ? stateNames[value as StateCode] : event.path === "/5/0/5" ? resultNames[value as ResultCode] : undefined;
		console.log(`${endpoint}: ${event.path} = ${event.value}${name ? ` (${name})` : ""}`);
	});
	new Lwm2mUpdate(server, endpoint, async () => {
		const code = uri ? await server.write(endpoint, "/5/0/1", uri) : await server.push(endpoint, "/5/0/0", pushed!);
		console.log(`${endpoint}: ${uri ? "Package URI written" : "package pushed"}: ${code}`);
	}, (result) => {
		console.log(`update of ${endpoint} ended: Update Result ${result} (${resultNames[result as ResultCode] ?? "?"})`);
		stop(isFailure(result as ResultCode) ? updateFailedExitCode : 0);
	});
}

async function job(flags: Flags): Promise<void> {
	const form = text(flags, "form")!;
	if (form !== "afr_ota" && form !== "fota") throw new UsageError("--form is afr_ota or fota");
	const streamFormat = text(flags, "stream-format", false);
	if (streamFormat !== undefined && streamFormat !== "json" && streamFormat !== "cbor") throw new UsageError("--stream-format is json or cbor");
	const imagePath = text(flags, "image")!;
	const { requestJob } = await import("./server/aws-iot");
	const created = await requestJob(text(flags, "mqtt")!, {
		thing: text(flags, "thing")!,
		form,
		image: new Uint8Array(fs.readFileSync(imagePath)),
		filePath: imagePath.split("/").pop(),
		streamFormat,
		jobId: text(flags, "job-id", false),
		fileId: integer(flags, "file-id", false),
		blockSize: integer(flags, "block-size", false),
		version: text(flags, "version", false),
		signature: text(flags, "signature", false),
	});
	console.log(JSON.stringify(created));
}

const durationUnits: { [unit: string]: number } = { ms: 1, s: 1000, m: 60000, h: 3600000, d: 86400000 };

/** "400d", "36h", "1d12h30m", "90s", "250ms" → milliseconds. */
export function parseDuration(text: string): number {
	const parts = /^(?:\d+(?:ms|s|m|h|d))+$/.test(text) ? text.match(/\d+(?:ms|s|m|h|d)/g)! : undefined;
	if (!parts) throw new UsageError(`bad duration ${text}: use e.g. 400d, 36h, 1d12h, 90s`);
	return parts.reduce((sum, part) => {
		const [, value, unit] = /^(\d+)(ms|s|m|h|d)$/.exec(part)!;
		return sum + Number(value) * durationUnits[unit];
	}, 0);
}

function clockFlag(flags: Flags): number | undefined {
	const text = optionalText(flags, "clock");
	if (text === undefined) return undefined;
	const time = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(text) ? Date.parse(text) : NaN;
	if (Number.isNaN(time)) throw new UsageError("--clock takes an ISO time with its zone, e.g. 2026-03-28T12:00:00Z");
	return time;
}

function optionalText(flags: Flags, name: string): string | undefined {
	return text(flags, name, false);
}

/**
	The maintenance flags as the app's settings: applied at power-on as the app's (or a server's) change is, so
	they replace stored ones. Checked here by the device's own rules, so a bad one stops the command (exit 2)
	before the board runs instead of being dropped with the others; an IANA zone name becomes its POSIX TZ.
*/
function maintenanceSettings(flags: Flags): Partial<MaintenanceSettings> | undefined {
	const settings: Partial<MaintenanceSettings> = {};
	const start = optionalText(flags, "maintenance"), tz = optionalText(flags, "tz"), mode = optionalText(flags, "mode"), optOut = optionalText(flags, "opt-out");
	const window = optionalText(flags, "window");
	if (start !== undefined) settings.start = start;
	if (tz !== undefined) {
		try {
			settings.tz = posixTimeZone(tz);
		}
		catch (error) {
			throw new UsageError(`--tz ${(error as Error).message}`);
		}
	}
	if (window !== undefined) settings.windowMinutes = /^\d+$/.test(window) ? Number(window) : NaN;
	if (mode !== undefined) settings.mode = mode.toUpperCase() as MaintenanceSettings["mode"];
	if (optOut !== undefined) settings.optOut = optOut.toUpperCase().replace(/-/g, "_") as MaintenanceSettings["optOut"];
	if (!Object.keys(settings).length) return undefined;
	const problem = checkMaintenanceSettings({ ...defaultMaintenanceSettings, ...settings });
	if (problem) throw new UsageError(`maintenance settings refused: ${maintenanceFlagProblem(problem)}`);
	return settings;
}

/** The device's reason, in the flags' words. */
function maintenanceFlagProblem(problem: string): string {
	if (problem.startsWith("start")) return "--maintenance takes HH:MM, from 00:00 to 23:59";
	if (problem.startsWith("window")) return "--window takes 1 to 1440 minutes";
	if (problem.startsWith("unknown mode")) return "--mode is foreground or background";
	if (problem.startsWith("unknown opt-out")) return "--opt-out is none, ignore-update, bypass-optout or enforce-optout";
	return problem;
}

/** --psk-identity ID --psk-key HEX: a DTLS pre-shared key (the board's, or the one a server takes). */
function pskFlags(flags: Flags): { identity: string; key: Uint8Array } | undefined {
	const identity = optionalText(flags, "psk-identity"), key = optionalText(flags, "psk-key");
	if ((identity === undefined) !== (key === undefined)) throw new UsageError("--psk-identity and --psk-key go together");
	if (key !== undefined && !/^([0-9a-fA-F]{2}){1,64}$/.test(key)) throw new UsageError("--psk-key is 1 to 64 bytes of hex");
	return identity === undefined ? undefined : { identity, key: new Uint8Array(Buffer.from(key!, "hex")) };
}

/** --ca, --mqtt-ca, --client-cert, --client-key, --psk-identity, --psk-key: the board's TLS and DTLS credentials, as bytes. */
function deviceCredentials(flags: Flags): Credentials | undefined {
	const files = { ca: optionalText(flags, "ca"), "mqtt-ca": optionalText(flags, "mqtt-ca"), cert: optionalText(flags, "client-cert"), key: optionalText(flags, "client-key") };
	if ((files.cert === undefined) !== (files.key === undefined)) throw new UsageError("--client-cert and --client-key go together");
	const pskFlag = pskFlags(flags);
	const psk = pskFlag === undefined ? {} : { "psk-identity": new Uint8Array(Buffer.from(pskFlag.identity, "utf8")), "psk-key": pskFlag.key };
	if (Object.values(files).every((file) => file === undefined) && pskFlag === undefined) {
		if (flags.provision === true) throw new UsageError("--provision needs credentials to write");
		return undefined;
	}
	return {
		ca: files.ca === undefined ? undefined : certificateDer(files.ca),
		"mqtt-ca": files["mqtt-ca"] === undefined ? undefined : certificateDer(files["mqtt-ca"]),
		cert: files.cert === undefined ? undefined : certificateDer(files.cert),
		key: files.key === undefined ? undefined : privateKeyDer(files.key),
		...psk,
	};
}

async function device(flags: Flags): Promise<void> {
	const json = flags.json === true;
	const engine = (text(flags, "engine", false) ?? "node") as EngineName;
	if (engine !== "node" && engine !== "xs") throw new UsageError("--engine is node or xs");
	const sha256 = text(flags, "sha256", false);
	if (sha256 !== undefined && !/^[0-9a-fA-F]{64}$/.test(sha256)) throw new UsageError("--sha256 takes 64 hex digits");
	const policy = text(flags, "policy", false) as PolicyName | undefined;
	const { policyCodes, runDevice } = await import("./device");
	if (policy !== undefined && !Object.hasOwn(policyCodes, policy)) throw new UsageError(`--policy is ${Object.keys(policyCodes).join(", ")}`);
	const mqtt = text(flags, "mqtt", false), thing = text(flags, "thing", false);
	if ((mqtt === undefined) !== (thing === undefined)) throw new UsageError("--mqtt and --thing go together");
	if (mqtt !== undefined && !/^mqtts?:\/\/[^:/]+(:\d+)?\/?$/.test(mqtt)) throw new UsageError("--mqtt takes mqtt://host:port or mqtts://host:port");
	const alpn = optionalText(flags, "mqtt-alpn");
	const lwm2m = optionalText(flags, "lwm2m"), bootstrap = optionalText(flags, "bootstrap"), endpoint = optionalText(flags, "endpoint");
	if ((lwm2m === undefined && bootstrap === undefined) !== (endpoint === undefined)) throw new UsageError("--endpoint goes with --lwm2m or --bootstrap, and they with it");
	if (lwm2m !== undefined && !/^coaps?:\/\/[^:/]+(:\d+)?\/?$/.test(lwm2m)) throw new UsageError("--lwm2m takes coap://host:port or coaps://host:port");
	if (bootstrap !== undefined && !/^coap:\/\/[^:/]+(:\d+)?\/?$/.test(bootstrap)) throw new UsageError("--bootstrap takes coap://host:port");
	const lifetime = integer(flags, "lifetime", false);
	const queueWait = integer(flags, "queue-wait", false);
	if ((flags.queue === true || queueWait !== undefined) && lwm2m === undefined && bootstrap === undefined) throw new UsageError("--queue and --queue-wait go with --lwm2m or --bootstrap");
	if (queueWait !== undefined && flags.queue !== true) throw new UsageError("--queue-wait goes with --queue");
	const report = json ? undefined : new ConsoleReport({ logs: true });
	const onEvent = report ? report.show : (event: DeviceReport) => console.log(JSON.stringify(event));
	const severity = optionalText(flags, "severity") as SeverityName | undefined;
	if (severity !== undefined && !severityNames.includes(severity)) throw new UsageError(`--severity is ${severityNames.join(", ")}`);
	const maxDeferSeconds = integer(flags, "max-defer", false);
	if ((severity !== undefined || maxDeferSeconds !== undefined) && flags.url === undefined) throw new UsageError("--severity and --max-defer go with --url");
	const maintenance = maintenanceSettings(flags);
	const runFor = optionalText(flags, "run-for");
	const commands: DeviceCommand[] = [];
	const shutdown = () => commands.push({ action: "shutdown" });
	process.once("SIGINT", shutdown);
	process.once("SIGTERM", shutdown);
	const outcome = await runDevice({
		startTime: clockFlag(flags),
		runFor: runFor === undefined ? undefined : parseDuration(runFor),
		rebootWarning: optionalText(flags, "reboot-warning"),
		maintenance,
		config: {
			...(flags["no-reboot-persistence"] === true ? { rebootPersistence: false } : {}), ...(alpn !== undefined ? { mqttAlpn: alpn } : {}),
			...(endpoint !== undefined ? { endpoint, ...(lifetime !== undefined ? { lifetime } : {}) } : {}),
			...(lwm2m !== undefined ? { lwm2m } : {}), ...(bootstrap !== undefined ? { bootstrap } : {}),
			...(flags.queue === true ? { queueMode: true, ...(queueWait !== undefined ? { queueWait } : {}) } : {}),
		},
		credentials: deviceCredentials(flags),
		provisioned: flags.provision === true,
		commands,
		dir: text(flags, "dir")!,
		engine,
		url: text(flags, "url", false),
		sha256,
		policy,
		severity,
		maxDeferSeconds,
		cutAfterOps: integer(flags, "cut-after-ops", false),
		mqtt,
		thing,
		onEvent,
	});
	report?.line(report.summary(outcome));
	// Opt-in: scripts that want a failed update to fail the command.
	if (flags["exit-code"] === true && isFailure(outcome.result as ResultCode)) process.exitCode = updateFailedExitCode;
}

/** Every command: what runs it and its flags. */
const commandSpecs: { [name: string]: CommandSpec & { run: (flags: Flags) => Promise<void> } } = {
	image: {
		usage: "xs-ota image", summary: "Writes a well-formed ESP32 app image.", run: image,
		flags: [
			{ name: "out", value: "FILE", help: "where to write it; required" },
			{ name: "size", value: "BYTES", help: "its size; required" },
			{ name: "version", value: "VERSION", help: "the version in its app description; required" },
			{ name: "chip", value: "esp32|esp32s3|esp32c3|…", help: "the chip id in its header (default esp32)" },
			{ name: "secure-version", value: "N", help: "the anti-rollback counter in its app description (default 0)" },
			{ name: "sign", value: "KEY.PEM[,KEY.PEM…]", help: "append a Secure Boot v2 signature block per key (RSA-3072 or P-256, at most 3)" },
			{ name: "secure-pad-v2", help: "pad the image to a 64 KiB page with a padding segment, as ESP-IDF's build does for signed apps" },
		],
	},
	patch: {
		usage: "xs-ota patch", summary: "Writes a detools sequential patch from one image to the next (what the device applies in place of an image).", run: patch,
		flags: [
			{ name: "to", value: "NEW.bin", help: "the image the patch makes; required" },
			{ name: "out", value: "FILE", help: "where to write the patch; required" },
			{ name: "from", value: "OLD.bin", help: "the image the device runs (the patch's base); without it, a compressed full image" },
			{ name: "compression", value: "heatshrink|crle|none", help: "how the patch is compressed (default heatshrink, as detools)" },
			{ name: "heatshrink-window", value: "N", help: "heatshrink: log2 of the window, 4 to 12 (default 8; the device holds 2^N bytes)" },
			{ name: "heatshrink-lookahead", value: "N", help: "heatshrink: log2 of the longest copy, 3 to window − 1 (default 7)" },
			{ name: "esp-delta-ota", help: "wrap it in ESP-IDF's esp_delta_ota framing: the base's SHA-256 first, so a device running another image refuses it before writing" },
		],
	},
	serve: {
		usage: "xs-ota serve", summary: "Serves a folder over HTTP(S) with Range and ETags, or (--mqtt) the AWS IoT Jobs and streams emulator, or (--lwm2m) an LwM2M server.", run: serve,
		flags: [
			{ name: "dir", value: "DIR", help: "the folder to serve (HTTP)" },
			{ name: "port", value: "PORT", help: "the port (required for HTTP; MQTT picks one when absent)" },
			{ name: "mqtt", help: "run the AWS IoT emulator on an MQTT broker instead" },
			{ name: "tls-cert", value: "CHAIN.PEM", help: "serve over TLS with this certificate chain" },
			{ name: "tls-key", value: "KEY.PEM", help: "the TLS certificate's private key" },
			{ name: "client-ca", value: "CA.PEM", help: "mqtt: require client certificates signed by this CA" },
			{ name: "alpn", value: "PROTO", help: "mqtt: accept only clients offering this ALPN protocol" },
			{ name: "lwm2m", help: "run a local LwM2M server over CoAP/UDP instead: NoSec, or DTLS with --psk-identity and --psk-key" },
			{ name: "file", value: "PACKAGE", help: "lwm2m: also serve PACKAGE over coap:// (coaps:// with a PSK) for pulls" },
			{ name: "update", value: "ENDPOINT", help: "lwm2m: update ENDPOINT when it registers (Package URI of --file, or --package-uri), then exit" },
			{ name: "package-uri", value: "URI", help: "lwm2m --update: write this Package URI (http(s):// or coap://) instead of --file's" },
			{ name: "push", help: "lwm2m --update: push --file to /5/0/0 by Block1 instead of writing its URI" },
			{ name: "bootstrap", help: "lwm2m: also run a Bootstrap-Server that provisions this LwM2M server" },
			{ name: "bootstrap-port", value: "PORT", help: "lwm2m --bootstrap: the Bootstrap-Server's port (one is picked when absent)" },
			{ name: "psk-identity", value: "ID", help: "lwm2m: speak DTLS (coaps://) and take only this PSK identity" },
			{ name: "psk-key", value: "HEX", help: "lwm2m: that identity's pre-shared key" },
		],
	},
	job: {
		usage: "xs-ota job create", summary: "Queues a firmware job for a thing on a running emulator; prints the job and stream ids.", run: job,
		flags: [
			{ name: "mqtt", value: "URL", help: "the emulator's URL; required" },
			{ name: "thing", value: "NAME", help: "the thing; required" },
			{ name: "image", value: "FILE", help: "the image; required" },
			{ name: "form", value: "afr_ota|fota", help: "the job document's form; required" },
			{ name: "stream-format", value: "json|cbor", help: "the stream's format" },
			{ name: "job-id", value: "ID", help: "the job id" },
			{ name: "file-id", value: "N", help: "the stream's file id" },
			{ name: "block-size", value: "N", help: "the stream block size" },
			{ name: "version", value: "V", help: "the version the document names" },
			{ name: "signature", value: "BASE64", help: "afr_ota: the image's signature" },
		],
	},
	device: {
		usage: "xs-ota device", summary: "Powers on the simulated board kept in DIR and runs it until it is idle or the power is cut.", run: device,
		flags: [
			{ name: "dir", value: "DIR", help: "the board's folder; required" },
			{ name: "engine", value: "node|xs", help: "the JavaScript engine (default node)" },
			{ name: "url", value: "URL", help: "deliver an update request for this package URI" },
			{ name: "sha256", value: "HEX", help: "the package's expected SHA-256" },
			{ name: "policy", value: "save-point|restart|abort|none", help: "the recovery policy of the request" },
			{ name: "cut-after-ops", value: "N", help: "cut power during the Nth persistent write" },
			{ name: "json", help: "one JSON object a line" },
			{ name: "exit-code", help: "exit 3 when the update failed (an Update Result of 2 to 10)" },
			{ name: "clock", value: "ISO-TIME", help: "start the board's wall clock there" },
			{ name: "run-for", value: "DURATION", help: "run this much virtual time (400d, 36h, 90s)" },
			{ name: "reboot-warning", value: "FILE", help: "the reboot warning file to watch" },
			{ name: "mqtt", value: "mqtt[s]://HOST:PORT", help: "follow AWS IoT jobs on this broker (with --thing)" },
			{ name: "thing", value: "NAME", help: "the thing name on the broker" },
			{ name: "mqtt-alpn", value: "PROTO", help: "ALPN protocol to offer over mqtts" },
			{ name: "lwm2m", value: "coap[s]://HOST:PORT", help: "register with this LwM2M server (with --endpoint; coaps:// with --psk-identity and --psk-key)" },
			{ name: "bootstrap", value: "coap://HOST:PORT", help: "ask this Bootstrap-Server for the LwM2M server (with --endpoint)" },
			{ name: "endpoint", value: "NAME", help: "the board's LwM2M endpoint name" },
			{ name: "lifetime", value: "SECONDS", help: "the LwM2M registration lifetime (default 300, at least 60)" },
			{ name: "queue", help: "LwM2M Queue Mode: listen only for a while after each exchange, the server queues its requests" },
			{ name: "queue-wait", value: "SECONDS", help: "--queue: how long it listens after each exchange (default 93, CoAP MAX_TRANSMIT_WAIT)" },
			{ name: "ca", value: "FILE", help: "the CA the board trusts for HTTPS" },
			{ name: "mqtt-ca", value: "FILE", help: "the CA the board trusts for MQTT" },
			{ name: "client-cert", value: "FILE", help: "the board's client certificate" },
			{ name: "client-key", value: "FILE", help: "the board's client key" },
			{ name: "psk-identity", value: "ID", help: "the board's DTLS PSK identity (coaps://)" },
			{ name: "psk-key", value: "HEX", help: "the board's DTLS pre-shared key" },
			{ name: "provision", help: "write the credentials to the board's preferences, not its app" },
			{ name: "severity", value: "critical|major|minor", help: "--url: the update's severity (critical installs at once)" },
			{ name: "max-defer", value: "SECONDS", help: "--url: how long the install may wait for a window" },
			{ name: "no-reboot-persistence", help: "keep the job list in RAM only (a reboot forgets it)" },
			{ name: "maintenance", value: "HH:MM", help: "the maintenance window's start (replaces the stored one)" },
			{ name: "tz", value: "POSIX-TZ|IANA", help: "the board's time zone: CET-1CEST,M3.5.0,M10.5.0/3 or Europe/Berlin" },
			{ name: "window", value: "MINUTES", help: "the maintenance window's length" },
			{ name: "mode", value: "foreground|background", help: "the maintenance mode" },
			{ name: "opt-out", value: "none|ignore-update|bypass-optout|enforce-optout", help: "the user's opt-out; bypass-optout is their consent" },
		],
	},
	fleet: { ...fleetSpec, run: fleetCommand },
	demo: {
		usage: "xs-ota demo", summary: "A complete simulated update with one power cut and the resume (what npm start runs).",
		run: async (flags) => (await import("./demo")).runDemo(flags),
		flags: [
			{ name: "engine", value: "node|xs", help: "the JavaScript engine (default node)" },
			{ name: "lwm2m", help: "driven by a local LwM2M server, the package pulled over coap://" },
		],
	},
};

const usage = `usage: xs-ota ${Object.keys(commandSpecs).join("|")} [flags]   (xs-ota COMMAND --help; README.md)`;

function version(): string {
	return (JSON.parse(fs.readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }).version;
}

const helpFlags = ["-h", "--help"];

/** xs-ota --help: every command, one line each. */
function commandList(): string {
	const width = Math.max(...Object.keys(commandSpecs).map((name) => commandSpecs[name].usage.length), "xs-ota fleet monitor".length);
	const lines = Object.values(commandSpecs).map((spec) => `  ${spec.usage.padEnd(width)}  ${spec.summary.split("\n")[0]}`);
	lines.splice(lines.findIndex((line) => line.includes("xs-ota fleet ")) + 1, 0, `  ${monitorSpec.usage.padEnd(width)}  ${monitorSpec.summary.split("\n")[0]}`);
	return `${usage}\n\n${lines.join("\n")}\n  ${"xs-ota --version".padEnd(width)}  prints the version\n\nExit codes: 0 done, 1 the command failed, 2 a usage mistake; fleet adds 3 (a round or job failed) and 4 (a job left running).\n`;
}

export async function main(argv: string[]): Promise<void> {
	const [name, ...rest] = argv;
	if (name === "--version") {
		console.log(version());
		return;
	}
	if (helpFlags.includes(name)) {
		process.stdout.write(commandList());
		return;
	}
	// "job" takes its action word, and "fleet" may take "monitor", before the flags.
	let spec: (CommandSpec & { run: (flags: Flags) => Promise<void> }) | undefined = Object.hasOwn(commandSpecs, name) ? commandSpecs[name] : undefined;
	if (name === "job" && rest[0] === "create") rest.shift();
	else if (name === "job" && !helpFlags.includes(rest[0])) spec = undefined;
	if (name === "fleet" && rest[0] === "monitor") {
		rest.shift();
		spec = { ...monitorSpec, run: monitorCommand };
	}
	if (!spec) {
		const hint = name && name !== "job" ? nearest(name, Object.keys(commandSpecs)) : undefined;
		const why = name === undefined ? "" : name === "job" ? "\nxs-ota: job takes the action create" : `\nxs-ota: unknown command ${name}${hint ? `: did you mean ${hint}?` : ""}`;
		console.error(`${usage}${why}`);
		process.exitCode = 2;
		return;
	}
	try {
		await spec.run(parseFlags(rest, spec));
	}
	catch (error) {
		if (error instanceof HelpRequest) {
			process.stdout.write(error.text);
			return;
		}
		const lines = sentence(error as Error).split("\n");
		for (const line of lines) console.error(`${spec.usage}: ${line}`);
		process.exitCode = error instanceof UsageError ? 2 : 1;
	}
}
