// What a Bootstrap-Server provisioned (LwM2M Core §6.1): the instances of Objects 0 (Security) and 1 (Server)
// it wrote, the check Bootstrap-Finish makes of them, and how they are kept across power cuts.
//
// ESP32's preference set erases the old value before it writes the new one, so a cut during one set can leave
// neither. The configuration therefore alternates between two keys, each record numbered: a commit writes the
// key that does not hold the current record, with the next number, in one set. A cut before that set completes
// leaves the old record the newest valid one; once it completes, the new one is. Old or new, never half, never
// none when there was one. A record that does not parse or does not pass the Finish check is ignored, as if
// absent: the client bootstraps again.

import type { KeyValueStore, Logger } from "../platform/ports";
import { utf8Length } from "../lib/utf8";
import { minLifetime } from "./device-objects";
import { parseServerUri } from "./registration";

/** An instance of Object 0: a server's address and how to reach it securely. */
export interface SecurityAccount {
	id: number;
	uri?: string;
	/** Bootstrap-Server (resource 1): the account of a Bootstrap-Server, not of an LwM2M server. */
	bootstrap?: boolean;
	/** Security Mode (resource 2): 0 PSK, 1 RPK, 2 certificate, 3 NoSec, 4 certificate with EST. */
	mode?: number;
	ssid?: number;
}

/** An instance of Object 1: how the client works with the LwM2M server of the same Short Server ID. */
export interface ServerAccount {
	id: number;
	ssid?: number;
	lifetime?: number;
	pmin?: number;
	pmax?: number;
	binding?: string;
	/** Bootstrap on Registration Failure (resource 16, default true) and Communication Retry Count (17, default 5). */
	bootstrapOnFailure?: boolean;
	retries?: number;
}

export interface Provisioning {
	security: SecurityAccount[];
	servers: ServerAccount[];
}

/** The LwM2M server a consistent provisioning names: where the client registers, and on what terms. */
export interface ProvisionedServer {
	uri: string;
	ssid: number;
	lifetime: number | undefined;
	pmin: number | undefined;
	pmax: number | undefined;
	/** Consecutive failed registrations after which the client bootstraps again; 0: never. */
	failuresBeforeBootstrap: number;
	/** A Bootstrap-Server account the Bootstrap-Server wrote (it may move the client to another one). */
	bootstrapUri: string | undefined;
}

export const noSec = 3;
export const nosecOnly = "nosec (3) only: this client has no dtls";
export const defaultRetries = 5;
/** Instances of each object a Bootstrap-Server may create: room for a record well under maxValueBytes. */
export const maxInstances = 4;
export const maxUriLength = 255;
/** ESP32 preference values hold at most 4000 bytes. */
const maxBytes = 4000;
const keys = ["lw.prov.0", "lw.prov.1"];

/** The server a provisioning names, or why Bootstrap-Finish must refuse it (4.06 Not Acceptable). */
export function check(provisioning: Provisioning): ProvisionedServer | string {
	const { security, servers } = provisioning;
	const accounts = security.filter((account) => !account.bootstrap);
	const bootstraps = security.filter((account) => account.bootstrap);
	if (accounts.length !== 1) return accounts.length ? "one lwm2m server account only" : "no lwm2m server account";
	if (bootstraps.length > 1) return "more than one bootstrap-server account";
	for (const account of security) {
		if (account.mode !== noSec) return `security mode ${account.mode ?? "missing"} of /0/${account.id}: ${nosecOnly}`;
		// NoSec speaks plain CoAP: a coaps:// URI would need a mode with keys.
		if (!account.uri || parseServerUri(account.uri)?.secure !== false) return `server uri of /0/${account.id} is not coap://host[:port]`;
	}
	const account = accounts[0], ssid = account.ssid;
	if (ssid === undefined) return `no short server id in /0/${account.id}`;
	for (const server of servers)
		if (server.ssid !== ssid) return `/1/${server.id} names short server id ${server.ssid ?? "none"}, no security account does`;
	const server = servers[0];
	if (servers.length !== 1) return `no server object instance for short server id ${ssid}`;
	if (server.lifetime !== undefined && server.lifetime < minLifetime) return `lifetime ${server.lifetime} s below ${minLifetime} s`;
	if (server.binding !== undefined && server.binding.indexOf("U") < 0) return `binding ${server.binding}: udp (U) only`;
	return {
		uri: account.uri!, ssid, lifetime: server.lifetime, pmin: server.pmin, pmax: server.pmax,
		failuresBeforeBootstrap: server.bootstrapOnFailure === false ? 0 : server.retries ?? defaultRetries,
		bootstrapUri: bootstraps[0]?.uri,
	};
}

/** The provisioning in the store, newest first of the two keys; one that is unreadable or inconsistent is absent. */
export class ProvisioningStore {
	#store: KeyValueStore;
	#log: Logger;
	/** Number and key index of the newest valid record (number 0: none). */
	#number = 0;
	#slot = 1;

	constructor(store: KeyValueStore, log: Logger) {
		this.#store = store;
		this.#log = log;
	}

	load(): { provisioning: Provisioning; server: ProvisionedServer } | undefined {
		let newest: { provisioning: Provisioning; server: ProvisionedServer } | undefined;
		this.#number = 0;
		for (let slot = 0; slot < keys.length; slot++) {
			const text = this.#store.get(keys[slot]);
			if (text === undefined) continue;
			const record = parse(text);
			if (typeof record === "string") {
				this.#log(`lwm2m provisioning ${keys[slot]} ignored: ${record}`);
				continue;
			}
			if (record.number <= this.#number) continue;
			this.#number = record.number;
			this.#slot = slot;
			newest = { provisioning: record.provisioning, server: record.server };
		}
		return newest;
	}

	/** Writes `provisioning` as the newest record, over the older key; a reason when it cannot be kept. */
	commit(provisioning: Provisioning): string | undefined {
		const number = this.#number + 1, slot = 1 - this.#slot;
		const text = JSON.stringify({ n: number, s: provisioning.security, c: provisioning.servers });
		if (utf8Length(text) > maxBytes) return "provisioning too large to keep";
		this.#store.set(keys[slot], text);
		this.#number = number;
		this.#slot = slot;
		return undefined;
	}
}

function parse(text: unknown): { number: number; provisioning: Provisioning; server: ProvisionedServer } | string {
	if (typeof text !== "string") return "not text";
	let record;
	try {
		record = JSON.parse(text);
	}
	catch {
		return "not json";
	}
	if (!record || typeof record !== "object" || !Number.isSafeInteger(record.n) || record.n < 1) return "no record number";
	if (!Array.isArray(record.s) || !Array.isArray(record.c) || record.s.length > maxInstances || record.c.length > maxInstances) return "bad instance lists";
	const provisioning: Provisioning = { security: [], servers: [] };
	for (const item of record.s) {
		if (!isInstance(item) || !optional(item.uri, "string") || !optional(item.bootstrap, "boolean") || !optionalInteger(item.mode) || !optionalInteger(item.ssid)) return "bad security account";
		provisioning.security.push({ id: item.id, uri: item.uri, bootstrap: item.bootstrap, mode: item.mode, ssid: item.ssid });
	}
	for (const item of record.c) {
		if (!isInstance(item) || !optionalInteger(item.ssid) || !optionalInteger(item.lifetime) || !optionalInteger(item.pmin) || !optionalInteger(item.pmax) ||
			!optional(item.binding, "string") || !optional(item.bootstrapOnFailure, "boolean") || !optionalInteger(item.retries)) return "bad server account";
		const { id, ssid, lifetime, pmin, pmax, binding, bootstrapOnFailure, retries } = item;
		provisioning.servers.push({ id, ssid, lifetime, pmin, pmax, binding, bootstrapOnFailure, retries });
	}
	const server = check(provisioning);
	if (typeof server === "string") return server;
	return { number: record.n, provisioning, server };
}

function isInstance(item: any): boolean {
	return !!item && typeof item === "object" && Number.isSafeInteger(item.id) && item.id >= 0 && item.id < 65535;
}

function optional(value: unknown, type: string): boolean {
	return value === undefined || typeof value === type;
}

function optionalInteger(value: unknown): boolean {
	return value === undefined || (Number.isSafeInteger(value) && (value as number) >= 0 && (value as number) <= 0x7fffffff);
}
