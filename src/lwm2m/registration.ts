/*
	Registration with one LwM2M server (Core §6.2, Transport §6.4): the client's session.

	  stopped ─start→ resolving ─address→ (a stored registration still in its lifetime?) updating : registering
	  registering ─POST /rd?ep&lt&lwm2m=1.1&b=U[&Q], links─→ 2.01 Location → registered
	  registered ─ at 90% of the lifetime, on a changed lifetime or the trigger ─→ updating
	  updating ─POST <location>─→ 2.04 → registered
	           ─ 4.xx (the server forgot us: restarted, or the lifetime ran out) → registering at once
	  registering / updating ─ no answer, 5.xx ─→ waiting (doubling from retryBaseMs to retryMaxMs) → registering
	  any failure that makes the listener's failed(n) true ─→ stopped (the client bootstraps instead)
	  any ─stop(deregister)─→ DELETE <location> (answered, or deregisterWaitMs) → stopped
	  any ─stop(keep)─→ stopped, the stored registration kept for the next boot's update
	Q (Queue Mode, queue-mode.ts): the server holds its requests while the client sleeps and sends them once
	it hears from the client again; each Registration Update wakes the client.
	The location, lifetime and time of the last registration are kept in the session (session.ts), so after a
	power cut within the lifetime the client updates its registration and the server keeps its observations.
*/

import type { CoapEndpoint, Peer } from "../coap/endpoint";
import { Code, ContentFormat, type CoapOption, type Message, Option, codeName, stringBytes, stringOptions, uintBytes } from "../coap/message";
import type { Clock, Logger, UdpOpener } from "../platform/ports";
import type { ServerSettings } from "./device-objects";
import type { Session } from "./session";
import { ServerExchange, doublingDelay } from "./server-exchange";

export interface RegistrationOptions {
	endpoint: string;
	retryBaseMs: number;
	retryMaxMs: number;
	/** Register in Queue Mode (the Q parameter). */
	queueMode: boolean;
}

export interface RegistrationListener {
	/** Registered (`fresh`: a new registration, the server knows nothing of earlier observations) or updated. */
	registered(fresh: boolean): void;
	/** The session is gone until the next registration. */
	unregistered(): void;
	/** Registration failed `failures` times in a row: true when the client gives this server up (it bootstraps). */
	failed?(failures: number): boolean;
}

export interface RegistrationPorts {
	coap: CoapEndpoint;
	udp: UdpOpener;
	clock: Clock;
	log: Logger;
}

/** How long a De-register waits for its answer: about one retransmission at RFC 7252's ACK_TIMEOUT. */
const deregisterWaitMs = 5000;

type Phase = "stopped" | "resolving" | "registering" | "updating" | "registered" | "waiting";

export class Registration {
	#ports: RegistrationPorts;
	#session: Session;
	#settings: ServerSettings;
	#options: RegistrationOptions;
	#links: () => string;
	#listener: RegistrationListener;
	#phase: Phase = "stopped";
	#peer: Peer | undefined;
	#location: string[] = [];
	#registeredLifetime = 0;
	#exchange: ServerExchange;
	#failures = 0;

	constructor(ports: RegistrationPorts, session: Session, settings: ServerSettings, options: RegistrationOptions, links: () => string, listener: RegistrationListener) {
		this.#ports = ports;
		this.#exchange = new ServerExchange(ports.clock);
		this.#session = session;
		this.#settings = settings;
		this.#options = options;
		this.#links = links;
		this.#listener = listener;
	}

	get registered(): boolean {
		return this.#phase === "registered" || this.#phase === "updating";
	}

	/** The server's address, once resolved. */
	get peer(): Peer | undefined {
		return this.#peer;
	}

	get location(): string {
		return "/" + this.#location.join("/");
	}

	start(): void {
		if (this.#phase !== "stopped") return;
		const server = parseServerUri(this.#settings.serverUri);
		if (!server) return this.#ports.log(`lwm2m off: server uri ${this.#settings.serverUri} is not coap[s]://host[:port]`);
		this.#phase = "resolving";
		this.#ports.udp.resolve(server.host, (address) => {
			if (this.#phase !== "resolving") return;
			if (!address) return this.#retry(`cannot resolve ${server.host}`);
			this.#peer = { address, port: server.port };
			if (this.#restore()) this.#update();
			else this.#register();
		});
	}

	/** Sends a Registration Update now (a setting changed, or the server asked through Object 1's trigger). */
	update(): void {
		if (this.#phase === "registered") this.#update();
	}

	/**
		Ends the session; `done` once nothing more will be sent. `deregister` (an orderly power-off, Core
		§6.2.3): DELETE the registration, done on its answer or after deregisterWaitMs without one — a silent
		server must not hold the shutdown. Otherwise the stored registration stays for the next boot's update.
	*/
	stop(deregister: boolean, done: () => void = () => {}): void {
		const registered = this.registered, peer = this.#peer, location = this.#location;
		this.#exchange.halt();
		this.#phase = "stopped";
		if (!deregister || !registered || !peer) return done();
		this.#session.data.registration = undefined;
		this.#session.save();
		const { coap, clock } = this.#ports;
		let timer: unknown;
		const finished = () => {
			clock.clearTimeout(timer);
			cancel();
			done();
		};
		const cancel = coap.request(peer, Code.delete, pathOptions(location), undefined, true, finished);
		timer = clock.setTimeout(finished, deregisterWaitMs);
	}

	#register(): void {
		const { endpoint } = this.#options, lifetime = this.#settings.lifetime;
		this.#phase = "registering";
		const options = [{ number: Option.uriPath, value: stringBytes("rd") }, { number: Option.contentFormat, value: uintBytes(ContentFormat.linkFormat) },
			...queryOptions([`ep=${endpoint}`, `lt=${lifetime}`, "lwm2m=1.1", "b=U", ...(this.#options.queueMode ? ["Q"] : [])])];
		this.#send(Code.post, options, stringBytes(this.#links()), (response) => {
			if (response.code !== Code.created) return this.#retry(`registration refused: ${codeName(response.code)}`);
			const location = stringOptions(response, Option.locationPath);
			if (!location.length) return this.#retry("registration without location");
			this.#location = location;
			this.#registered(lifetime, true);
		});
	}

	#update(): void {
		const lifetime = this.#settings.lifetime;
		this.#phase = "updating";
		const options = pathOptions(this.#location);
		if (lifetime !== this.#registeredLifetime) options.push(...queryOptions([`lt=${lifetime}`]));
		this.#send(Code.post, options, undefined, (response) => {
			if (response.code === Code.changed) return this.#registered(lifetime, false);
			this.#ports.log(`registration update refused (${codeName(response.code)}): registering again`);
			this.#listener.unregistered();
			this.#register();
		});
	}

	#send(method: number, options: CoapOption[], payload: Uint8Array | undefined, answered: (response: Message) => void): void {
		this.#exchange.sent(this.#ports.coap.request(this.#peer!, method, options, payload, true, (response, error) => {
			this.#exchange.answered();
			if (!response) return this.#retry(`lwm2m server did not answer: ${error}`);
			if (response.code >= Code.internalServerError) return this.#retry(`lwm2m server error ${codeName(response.code)}`);
			answered(response);
		}));
	}

	#registered(lifetime: number, fresh: boolean): void {
		const { clock, log } = this.#ports;
		this.#phase = "registered";
		this.#failures = 0;
		this.#registeredLifetime = lifetime;
		this.#session.data.registration = { u: this.#settings.serverUri, e: this.#options.endpoint, l: this.#location, lt: lifetime, at: clock.now() };
		this.#session.save();
		log(`lwm2m ${fresh ? "registered" : "registration updated"} at ${this.location}, lifetime ${lifetime} s`);
		this.#exchange.after(lifetime * 900, () => this.update());
		this.#listener.registered(fresh);
	}

	#retry(reason: string): void {
		const wasRegistered = this.registered;
		this.#exchange.halt();
		if (wasRegistered) this.#listener.unregistered();
		if (this.#listener.failed?.(++this.#failures)) {
			this.#ports.log(`${reason}; ${this.#failures} failures: giving the server up`);
			this.#failures = 0;
			this.#phase = "stopped";
			return;
		}
		const delay = doublingDelay(this.#options, this.#failures);
		this.#ports.log(`${reason}; registering again in ${delay} ms`);
		this.#phase = "waiting";
		this.#exchange.after(delay, () => {
			if (this.#phase !== "waiting") return;
			if (this.#peer) this.#register();
			else {
				this.#phase = "stopped";
				this.start();
			}
		});
	}

	/** The stored registration, when it is this server's and this endpoint's and its lifetime has not run out. */
	#restore(): boolean {
		const saved = this.#session.data.registration;
		if (!saved) return false;
		const { u, e, l, lt, at } = saved;
		if (u !== this.#settings.serverUri || e !== this.#options.endpoint || !Array.isArray(l) || !l.length || typeof lt !== "number" || typeof at !== "number") return false;
		if (!l.every((segment: unknown) => typeof segment === "string" && segment.length <= 255)) return false;
		// A wall clock that moved backwards (never set, or reset) cannot vouch for the registration.
		const age = this.#ports.clock.now() - at;
		if (!(age >= 0 && age < lt * 1000)) return false;
		this.#location = l;
		this.#registeredLifetime = lt;
		return true;
	}
}

/** coap://host[:port] (NoSec, 5683 by default) or coaps://host[:port] (DTLS with a PSK, 5684). */
export function parseServerUri(uri: string): { host: string; port: number; secure: boolean } | undefined {
	const match = /^coap(s?):\/\/(\[[0-9a-fA-F:.]+\]|[^:/?#\s]+)(?::(\d{1,5}))?\/?$/.exec(uri);
	if (!match) return undefined;
	const secure = match[1] === "s", port = Number(match[3] ?? (secure ? 5684 : 5683));
	return port >= 1 && port <= 65535 ? { host: match[2], port, secure } : undefined;
}

function pathOptions(segments: readonly string[]): CoapOption[] {
	return segments.map((segment) => ({ number: Option.uriPath, value: stringBytes(segment) }));
}

export function queryOptions(arguments_: readonly string[]): CoapOption[] {
	return arguments_.map((argument) => ({ number: Option.uriQuery, value: stringBytes(argument) }));
}
