/*
	LwM2M 1.1 Queue Mode (Core §6.2.1, the Register's Q parameter; Transport §6.5): the client is reachable
	only for a while after each exchange, and the server holds its requests until the client is heard again.

	  listening ─ waitMs (MAX_TRANSMIT_WAIT, 93 s by default) without a datagram in or out, no exchange or
	              reply outstanding, no Package push under way ─→ asleep: the CoAP socket closes (the radio may sleep)
	  asleep ─ a message to send (the Registration Update before the lifetime ends, a pull's request) ─→ listening
	  The socket that opens again has another local port, which the server learns only from a Registration
	  Update: until one was answered on it (`announced`), a notification waits, and asks for that Update first.

	Every exchange restarts the wait; the timer is armed once per listening period and checks the time of the
	last datagram when it fires, so a transfer's blocks arm nothing.
*/

import type { CoapEndpoint } from "../coap/endpoint";
import type { Clock, Logger } from "../platform/ports";

export interface QueueModeHost {
	/** Something besides the endpoint's own exchanges needs the socket (a Package push under way). */
	busy(): boolean;
}

export class QueueMode {
	/** A Registration Update (or Register) was answered on the socket open now. */
	announced = false;
	readonly waitMs: number;
	#ports: { coap: CoapEndpoint; clock: Clock; log: Logger };
	#host: QueueModeHost;
	#lastActivity = 0;
	#timer: unknown;

	constructor(ports: { coap: CoapEndpoint; clock: Clock; log: Logger }, waitMs: number, host: QueueModeHost) {
		this.#ports = ports;
		this.waitMs = waitMs;
		this.#host = host;
	}

	start(): void {
		this.#ports.coap.onActivity = () => this.#activity();
		this.#activity();
	}

	stop(): void {
		this.#ports.coap.onActivity = undefined;
		this.#ports.clock.clearTimeout(this.#timer);
		this.#timer = undefined;
	}

	#activity(): void {
		const { clock } = this.#ports;
		this.#lastActivity = clock.ticks();
		this.#timer ??= clock.setTimeout(() => this.#check(), this.waitMs);
	}

	#check(): void {
		const { coap, clock, log } = this.#ports;
		this.#timer = undefined;
		const quiet = clock.ticks() - this.#lastActivity;
		if (quiet < this.waitMs || this.#host.busy() || !coap.suspend()) {
			// Busy: looked at again each second.
			this.#timer = clock.setTimeout(() => this.#check(), quiet < this.waitMs ? this.waitMs - quiet : 1000);
			return;
		}
		this.announced = false;
		log(`lwm2m asleep after ${Math.round(quiet / 1000)} s without an exchange`);
	}
}
