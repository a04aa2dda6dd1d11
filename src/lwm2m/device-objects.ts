// LwM2M Objects 0 (Security), 1 (Server) and 3 (Device) of a client with one server, NoSec (coap://) or
// pre-shared key (coaps://). Object 0 holds the server's URI and the PSK for the client itself: an LwM2M server
// never reads it (the client answers 4.01).

import { Code } from "../coap/message";
import { Kind } from "./model";
import { ResourceTable } from "./resource-table";

export interface ServerSettings {
	serverUri: string;
	shortServerId: number;
	/** Registration lifetime, seconds. */
	lifetime: number;
	/** Default pmin and pmax of observations, seconds (pmax 0: none). */
	minPeriod: number;
	maxPeriod: number;
}

/** Security Mode (Object 0, resource 2). */
const securityMode = { preSharedKey: 0, noSec: 3 } as const;

/**
	The shortest registration lifetime (s), for a server's write and the configuration alike: the client
	updates at 90% of it, and a shorter one would spend the radio on Registration Updates.
*/
export const minLifetime = 60;

/**
	Security Mode 0 for a coaps:// server, with its identity (resource 3) and key (5) as `psk` finds them where
	the TLS credentials are kept, at each read (none: empty); 3 (NoSec) for coap://.
*/
export function securityObject(settings: ServerSettings, psk: () => { identity: Uint8Array; key: Uint8Array } | undefined): ResourceTable {
	const secure = () => settings.serverUri.startsWith("coaps:");
	return new ResourceTable(0, "1.0", [
		{ id: 0, kind: Kind.string, read: () => settings.serverUri },
		{ id: 1, kind: Kind.boolean, read: () => false },
		{ id: 2, kind: Kind.integer, read: () => (secure() ? securityMode.preSharedKey : securityMode.noSec) },
		{ id: 3, kind: Kind.opaque, read: () => (secure() && psk()?.identity) || new Uint8Array(0) },
		{ id: 5, kind: Kind.opaque, read: () => (secure() && psk()?.key) || new Uint8Array(0) },
		{ id: 10, kind: Kind.integer, read: () => settings.shortServerId },
	]);
}

/** `changed` is told when the server changes a setting; `trigger` is the Registration Update Trigger. */
export function serverObject(settings: ServerSettings, changed: () => void, trigger: () => void): ResourceTable {
	const setting = (apply: (value: number) => void, min: number) => (value: unknown) => {
		if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min || value > 0x7fffffff) return Code.badRequest;
		apply(value);
		changed();
		return Code.changed;
	};
	return new ResourceTable(1, "1.1", [
		{ id: 0, kind: Kind.integer, read: () => settings.shortServerId },
		{ id: 1, kind: Kind.integer, read: () => settings.lifetime, write: setting((value) => (settings.lifetime = value), minLifetime) },
		{ id: 2, kind: Kind.integer, read: () => settings.minPeriod, write: setting((value) => (settings.minPeriod = value), 0) },
		{ id: 3, kind: Kind.integer, read: () => settings.maxPeriod, write: setting((value) => (settings.maxPeriod = value), 0) },
		{ id: 6, kind: Kind.boolean, read: () => false },
		{ id: 7, kind: Kind.string, read: () => "U" },
		{ id: 8, kind: Kind.none, execute: () => (trigger(), Code.changed) },
	]);
}

export interface DeviceInfo {
	manufacturer: string;
	model: string;
	serial: string;
	firmwareVersion(): string;
	/** LwM2M error codes now (0: no error). */
	errorCodes(): readonly number[];
	/** Wall-clock milliseconds since 1970. */
	now(): number;
	/** Orderly shutdown, then restart (resource 4). */
	reboot(): void;
}

export function deviceObject(info: DeviceInfo): ResourceTable {
	return new ResourceTable(3, "1.1", [
		{ id: 0, kind: Kind.string, read: () => info.manufacturer },
		{ id: 1, kind: Kind.string, read: () => info.model },
		{ id: 2, kind: Kind.string, read: () => info.serial },
		{ id: 3, kind: Kind.string, read: () => info.firmwareVersion() },
		{ id: 4, kind: Kind.none, execute: () => (info.reboot(), Code.changed) },
		{ id: 11, kind: Kind.integer, multiple: true, read: () => info.errorCodes() },
		{ id: 13, kind: Kind.time, read: () => Math.floor(info.now() / 1000) },
		{ id: 16, kind: Kind.string, read: () => "U" },
		{ id: 19, kind: Kind.string, read: () => info.firmwareVersion() },
	]);
}
