// What the LwM2M client keeps across a power cut: its registration (server, endpoint, location, lifetime,
// when), its observations and the attributes written to it, as one preference value. One value, because
// ESP32's preference set is not atomic: a cut may lose the value, and then registration and observations go
// together — the client registers afresh and the server, which drops observations on a new registration,
// observes again. Restoring half of it (a registration the server keeps, without the observations it holds)
// would leave the server waiting for notifications that never come.

import type { KeyValueStore, Logger } from "../platform/ports";

export interface SavedRegistration {
	/** Server URI and endpoint name it was made for. */
	u: string;
	e: string;
	/** Location path segments. */
	l: string[];
	/** Lifetime (s) and wall time (ms since 1970) of the registration or its last update. */
	lt: number;
	at: number;
}

export interface SavedObservation {
	a: string;
	p: number;
	/** Token, hex. */
	t: string;
	path: string;
	f: number;
	s: number;
}

export interface SessionData {
	registration: SavedRegistration | undefined;
	observations: SavedObservation[];
	attributes: { [path: string]: { [name: string]: number } };
}

const sessionKey = "lw.session";
/** ESP32 preference values hold at most 4000 bytes. */
const maxBytes = 4000;

export class Session {
	data: SessionData = { registration: undefined, observations: [], attributes: {} };
	#store: KeyValueStore;
	#log: Logger;

	constructor(store: KeyValueStore, log: Logger) {
		this.#store = store;
		this.#log = log;
	}

	/** Reads the saved session; a missing or malformed one is an empty session (shapes are checked by their owners). */
	load(): void {
		try {
			const saved = this.#store.get(sessionKey);
			if (typeof saved !== "string") return;
			const data = JSON.parse(saved);
			if (!data || typeof data !== "object") throw new Error("not an object");
			this.data = {
				registration: data.registration && typeof data.registration === "object" ? data.registration : undefined,
				observations: Array.isArray(data.observations) ? data.observations : [],
				attributes: data.attributes && typeof data.attributes === "object" && !Array.isArray(data.attributes) ? data.attributes : {},
			};
		}
		catch (error) {
			this.#log(`lwm2m session not restored: ${(error as Error).message}`);
		}
	}

	save(): void {
		const text = JSON.stringify(this.data);
		if (text.length > maxBytes) return this.#log("lwm2m session too large to keep");
		this.#store.set(sessionKey, text);
	}
}
