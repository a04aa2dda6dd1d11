/*
	A CoAP endpoint (RFC 7252) on one UDP socket, in both roles: client (requests out, responses matched by
	token) and server (requests in, handed to the handler, answered piggybacked or as a separate response),
	plus Observe notifications out (RFC 7641).

	Outgoing confirmable messages — requests, notifications, separate responses — are exchanges, one active
	per peer (NSTART = 1), the rest queued behind it in order:
		sending  → the message goes out, then again after ACK_TIMEOUT·rand(1, ACK_RANDOM_FACTOR), doubling the
		           wait each time, MAX_RETRANSMIT times; then "timeout".
		           ACK with the response → done; empty ACK → waiting (requests) or delivered; RST → "reset".
		waiting  → a request's separate response (CON: we ACK it) or a NON request's response, matched by
		           token; none within EXCHANGE_LIFETIME (after an empty ACK) or MAX_TRANSMIT_WAIT (NON) → "timeout".
	A NON notification or NON response goes out at once and is not an exchange.

	Incoming requests are deduplicated (§4.5) in a ring of the last `dedupEntries` (peer, message id) pairs,
	each valid for EXCHANGE_LIFETIME: a duplicate CON gets the recorded answer again (the piggybacked
	response, or the empty ACK of a separate one), a duplicate NON nothing; the handler sees each request once.
	A reply not given within `separateAfterMs` becomes a separate response: empty ACK now, CON response later.

	suspend() closes the socket while nothing is outstanding (LwM2M Queue Mode: the radio may sleep); the next
	message sent opens a new one, on another local port. onActivity hears every datagram sent or received.

	One send buffer of maxMessageBytes is reused; a confirmable message keeps its own copy for retransmission
	and the dedup ring keeps the answers it may replay, so memory is bounded by peers and ring size.
*/

import type { Clock, Logger, UdpOpener, UdpSocket } from "../platform/ports";
import {
	Code, Option, Type, codeName, isRequest, isResponse, parseMessage, sameBytes, serializeMessage, uintBytes,
	unknownCriticalOption, type CoapOption, type Message,
} from "./message";

export interface Peer {
	address: string;
	port: number;
}

/** A request that arrived (deduplicated). */
export interface CoapRequest {
	peer: Peer;
	method: number;
	confirmable: boolean;
	message: Message;
}

export interface CoapReply {
	code: number;
	options?: CoapOption[];
	payload?: Uint8Array;
}

export interface EndpointHandler {
	/** An incoming request (deduplicated); call reply exactly once, now or later (a later reply goes out as a separate response: empty ACK first after `separateAfterMs`). */
	request(request: CoapRequest, reply: (response: CoapReply) => void): void;
}

export interface EndpointOptions {
	ackTimeoutMs: number;
	ackRandomFactor: number;
	maxRetransmit: number;
	exchangeLifetimeMs: number;
	separateAfterMs: number;
	dedupEntries: number;
	maxMessageBytes: number;
	/** Uniform in [0, 1): retransmission jitter, message ids and tokens. */
	random: () => number;
}

/** RFC 7252 §4.8's defaults; 1152 bytes is its recommended message size limit (1024-byte blocks fit). */
export const defaultEndpointOptions: EndpointOptions = {
	ackTimeoutMs: 2000,
	ackRandomFactor: 1.5,
	maxRetransmit: 4,
	exchangeLifetimeMs: 247000,
	separateAfterMs: 1000,
	dedupEntries: 16,
	maxMessageBytes: 1152,
	random: Math.random,
};

/** MAX_TRANSMIT_WAIT (RFC 7252 §4.8.2): the longest a confirmable message may take; 93 s by default. */
export function maxTransmitWaitMs(options: EndpointOptions): number {
	return options.ackTimeoutMs * (2 ** (options.maxRetransmit + 1) - 1) * options.ackRandomFactor;
}

export interface EndpointPorts {
	udp: UdpOpener;
	clock: Clock;
	log: Logger;
}

type ExchangeKind = "request" | "notification" | "response";

interface Exchange {
	kind: ExchangeKind;
	peer: Peer;
	key: string;
	token: Uint8Array;
	messageId: number;
	confirmable: boolean;
	/** The serialized message, kept for retransmission. */
	packet: Uint8Array;
	state: "queued" | "sending" | "waiting";
	waitMs: number;
	retransmits: number;
	timer: unknown;
	finish: (response: Message | undefined, error?: string) => void;
}

interface Received {
	address: string;
	port: number;
	messageId: number;
	at: number;
	/** What a duplicate gets again (CON only): the piggybacked response or the empty ACK. */
	answer: Uint8Array | undefined;
}

interface SentNotification {
	address: string;
	port: number;
	messageId: number;
	token: Uint8Array;
}

const tokenBytes = 4;
const recentNotifications = 8;
const noBytes = new Uint8Array(0);

function peerKey(address: string, port: number): string {
	return `${address}:${port}`;
}

export class CoapEndpoint {
	/** A RST in answer to a NON notification also cancels: reported here. */
	onReset: ((peer: Peer, token: Uint8Array) => void) | undefined;
	/** A datagram went out or came in. */
	onActivity: (() => void) | undefined;
	readonly #ports: EndpointPorts;
	readonly #options: EndpointOptions;
	readonly #handler: EndpointHandler;
	readonly #buffer: Uint8Array;
	#socket: UdpSocket | undefined;
	/** Closed by suspend(): the next message sent opens the socket again. */
	#suspended = false;
	#messageId: number;
	/** Per peer: the active exchange first, then the queued ones. */
	#exchanges = new Map<string, Exchange[]>();
	#received: (Received | undefined)[];
	#receivedNext = 0;
	#notifications: (SentNotification | undefined)[] = new Array(recentNotifications);
	#notificationsNext = 0;
	/** Timers of requests still waiting for the handler's reply. */
	#separateTimers = new Set<unknown>();

	constructor(ports: EndpointPorts, options: EndpointOptions, handler: EndpointHandler) {
		this.#ports = ports;
		this.#options = options;
		this.#handler = handler;
		this.#buffer = new Uint8Array(options.maxMessageBytes);
		this.#received = new Array(options.dedupEntries);
		this.#messageId = Math.floor(options.random() * 0x10000);
	}

	/** 0: any port. */
	open(localPort: number): void {
		if (this.#socket) throw new Error("already open");
		this.#suspended = false;
		this.#socket = this.#ports.udp.open(localPort, {
			received: (packet, address, port) => this.#receive(new Uint8Array(packet), address, port),
			failed: (address, port, reason) => this.#peerFailed(address, port, reason),
		});
	}

	/**
		Cancels every exchange (retransmissions stop) and every separate response still to come, without
		calling back; the socket stays open for what is sent next.
	*/
	abandon(): void {
		for (const queue of this.#exchanges.values())
			for (const exchange of queue) this.#ports.clock.clearTimeout(exchange.timer);
		this.#exchanges.clear();
		for (const timer of this.#separateTimers) this.#ports.clock.clearTimeout(timer);
		this.#separateTimers.clear();
	}

	/** Cancels everything outstanding and closes the socket; no callback is called afterwards. */
	close(): void {
		this.abandon();
		this.#received.fill(undefined);
		this.#notifications.fill(undefined);
		this.#socket?.close();
		this.#socket = undefined;
		this.#suspended = false;
	}

	/** Closes the socket until something is sent again; refused (false) while an exchange or a reply is outstanding. */
	suspend(): boolean {
		if (!this.#socket || this.#exchanges.size || this.#separateTimers.size) return false;
		this.#socket.close();
		this.#socket = undefined;
		this.#suspended = true;
		return true;
	}

	get isOpen(): boolean {
		return this.#socket !== undefined;
	}

	/**
		Sends a request (CON or NON), retransmits CON per RFC 7252 §4.2, matches the response by token. `done` is
		called once: with the response, or with "timeout", "reset", "closed" (at once, when not open) or, over DTLS,
		the "dtls: " reason the session with the peer failed for. Returns a
		function that cancels the request without calling `done`.
	*/
	request(peer: Peer, method: number, options: CoapOption[], payload: Uint8Array | undefined, confirmable: boolean,
		done: (response: Message | undefined, error?: string) => void, token?: Uint8Array): () => void {
		const exchange = this.#exchange("request", peer, token ?? this.#token(), confirmable,
			{ code: method, options, payload }, undefined, done);
		return () => this.#end(exchange, undefined, undefined, false);
	}

	/**
		Sends a notification of an observation (RFC 7641) to `peer` with `token`: Observe option value `sequence`
		(24-bit), CON or NON. `done(true)` when ACKed (or at once for NON), `done(false)` when the peer answered
		RST or never ACKed (the caller then drops the observation).
	*/
	notify(peer: Peer, token: Uint8Array, sequence: number, reply: CoapReply, confirmable: boolean, done: (delivered: boolean) => void): void {
		const observe: CoapOption = { number: Option.observe, value: uintBytes(sequence & 0xffffff) };
		const options = reply.options ? [observe, ...reply.options] : [observe];
		this.#resume();
		if (!this.#socket) return done(false);
		if (confirmable) {
			this.#exchange("notification", peer, token, true, { code: reply.code, options, payload: reply.payload }, undefined,
				(_response, error) => done(error === undefined));
			return;
		}
		const messageId = this.#nextMessageId();
		if (this.#send(peer, Type.non, reply.code, messageId, token, options, reply.payload) === undefined) return done(false);
		this.#notifications[this.#notificationsNext] = { address: peer.address, port: peer.port, messageId, token: token.slice() };
		this.#notificationsNext = (this.#notificationsNext + 1) % recentNotifications;
		done(true);
	}

	#exchange(kind: ExchangeKind, peer: Peer, token: Uint8Array, confirmable: boolean, reply: CoapReply, messageId: number | undefined,
		finish: (response: Message | undefined, error?: string) => void): Exchange {
		const key = peerKey(peer.address, peer.port);
		const exchange: Exchange = {
			kind, peer, key, token, messageId: messageId ?? this.#nextMessageId(), confirmable, packet: noBytes, state: "queued",
			waitMs: 0, retransmits: 0, timer: undefined, finish,
		};
		this.#resume();
		if (!this.#socket) {
			finish(undefined, "closed");
			return exchange;
		}
		const length = this.#serialize(confirmable ? Type.con : Type.non, reply.code, exchange.messageId, token, reply.options ?? [], reply.payload);
		if (length === undefined) {
			finish(undefined, "message too large");
			return exchange;
		}
		exchange.packet = this.#buffer.slice(0, length);
		const queue = this.#exchanges.get(key);
		if (queue) queue.push(exchange);
		else {
			this.#exchanges.set(key, [exchange]);
			this.#start(exchange);
		}
		return exchange;
	}

	#start(exchange: Exchange): void {
		const { ackTimeoutMs, ackRandomFactor } = this.#options;
		this.#transmit(exchange.peer, exchange.packet, exchange.packet.length);
		if (exchange.confirmable) {
			exchange.state = "sending";
			exchange.waitMs = ackTimeoutMs * (1 + this.#options.random() * (ackRandomFactor - 1));
			this.#arm(exchange, exchange.waitMs);
		}
		else this.#wait(exchange, maxTransmitWaitMs(this.#options));
	}

	#arm(exchange: Exchange, ms: number): void {
		exchange.timer = this.#ports.clock.setTimeout(() => this.#timedOut(exchange), ms);
	}

	#timedOut(exchange: Exchange): void {
		exchange.timer = undefined;
		if (exchange.state === "sending" && exchange.retransmits < this.#options.maxRetransmit) {
			exchange.retransmits++;
			exchange.waitMs *= 2;
			this.#transmit(exchange.peer, exchange.packet, exchange.packet.length);
			this.#arm(exchange, exchange.waitMs);
			return;
		}
		this.#end(exchange, undefined, "timeout");
	}

	/** Stops retransmitting: the request now waits for its response alone. */
	#wait(exchange: Exchange, ms: number): void {
		this.#ports.clock.clearTimeout(exchange.timer);
		exchange.state = "waiting";
		this.#arm(exchange, ms);
	}

	/** Ends an exchange (reporting it unless cancelled), then starts the next one queued for its peer. */
	#end(exchange: Exchange, response: Message | undefined, error: string | undefined, report = true): void {
		const queue = this.#exchanges.get(exchange.key);
		const index = queue ? queue.indexOf(exchange) : -1;
		if (index < 0) return;
		this.#ports.clock.clearTimeout(exchange.timer);
		exchange.timer = undefined;
		queue!.splice(index, 1);
		if (index === 0) {
			if (queue!.length) this.#start(queue![0]);
			else this.#exchanges.delete(exchange.key);
		}
		if (report) exchange.finish(response, error);
	}

	/** The secure session with a peer failed: its exchanges, active and queued, end with the reason. */
	#peerFailed(address: string, port: number, reason: string): void {
		const key = peerKey(address, port), queue = this.#exchanges.get(key);
		if (!queue) return;
		this.#exchanges.delete(key);
		for (const exchange of queue) this.#ports.clock.clearTimeout(exchange.timer);
		for (const exchange of queue) exchange.finish(undefined, reason);
	}

	#active(address: string, port: number): Exchange | undefined {
		const exchange = this.#exchanges.get(peerKey(address, port))?.[0];
		return exchange && exchange.state !== "queued" ? exchange : undefined;
	}

	#receive(packet: Uint8Array, address: string, port: number): void {
		if (!this.#socket) return;
		this.onActivity?.();
		const message = parseMessage(packet);
		if (typeof message === "string") {
			this.#ports.log(`coap: ${message} from ${address}:${port}`);
			// A confirmable message we cannot process is rejected (§4.2), when its header can be read.
			if (packet.length >= 4 && packet[0] >> 6 === 1 && ((packet[0] >> 4) & 3) === Type.con)
				this.#reset(address, port, (packet[2] << 8) | packet[3]);
			return;
		}
		if (message.type === Type.ack || message.type === Type.reset) return this.#acknowledged(message, address, port);
		if (isRequest(message.code)) return this.#request(message, address, port);
		if (isResponse(message.code)) return this.#response(message, address, port);
		// An empty CON is a ping (§4.3); other codes are reserved: both are rejected.
		if (message.type === Type.con) this.#reset(address, port, message.messageId);
	}

	#acknowledged(message: Message, address: string, port: number): void {
		const exchange = this.#active(address, port);
		if (!exchange || exchange.state !== "sending" || exchange.messageId !== message.messageId) {
			if (message.type === Type.reset) this.#notificationReset(message.messageId, address, port);
			return;
		}
		if (message.type === Type.reset) return this.#end(exchange, undefined, "reset");
		if (message.code === Code.empty) {
			if (exchange.kind === "request") return this.#wait(exchange, this.#options.exchangeLifetimeMs);
			return this.#end(exchange, message, undefined);
		}
		if (exchange.kind === "request" && isResponse(message.code) && sameBytes(message.token, exchange.token))
			this.#end(exchange, message, undefined);
	}

	#notificationReset(messageId: number, address: string, port: number): void {
		for (let i = 0; i < recentNotifications; i++) {
			const sent = this.#notifications[i];
			if (!sent || sent.messageId !== messageId || sent.port !== port || sent.address !== address) continue;
			this.#notifications[i] = undefined;
			this.onReset?.({ address, port }, sent.token);
			return;
		}
	}

	/** A separate response (CON or NON) to one of our requests. */
	#response(message: Message, address: string, port: number): void {
		const confirmable = message.type === Type.con;
		if (confirmable && this.#replayed(message.messageId, address, port)) return;
		const exchange = this.#active(address, port);
		if (!exchange || exchange.kind !== "request" || !sameBytes(message.token, exchange.token)) {
			// Not ours (any more): a CON is rejected, a NON dropped.
			if (confirmable) this.#reset(address, port, message.messageId);
			return;
		}
		if (confirmable) this.#remember(address, port, message.messageId).answer = this.#answer(address, port, Type.ack, Code.empty, message.messageId, noBytes);
		this.#end(exchange, message, undefined);
	}

	#request(message: Message, address: string, port: number): void {
		const confirmable = message.type === Type.con;
		if (this.#replayed(message.messageId, address, port)) return;
		const received = this.#remember(address, port, message.messageId);
		const peer = { address, port };
		const critical = unknownCriticalOption(message);
		if (critical !== undefined) {
			this.#ports.log(`coap: unknown critical option ${critical} from ${address}:${port}`);
			// §5.4.1: a CON gets 4.02; a NON is rejected by silence.
			if (confirmable) received.answer = this.#answer(address, port, Type.ack, Code.badOption, message.messageId, message.token);
			return;
		}
		const token = message.token.slice();
		let replied = false, separate = false, timer: unknown;
		const socket = this.#socket;
		const reply = (response: CoapReply) => {
			if (replied || socket !== this.#socket) return;
			replied = true;
			if (timer !== undefined) {
				this.#ports.clock.clearTimeout(timer);
				this.#separateTimers.delete(timer);
			}
			const options = response.options ?? [];
			if (separate)
				this.#exchange("response", peer, token, true, response, undefined, (_response, error) => {
					if (error) this.#ports.log(`coap: separate response to ${address}:${port} ${error}`);
				});
			else if (confirmable) {
				received.answer = this.#answer(address, port, Type.ack, response.code, message.messageId, token, options, response.payload)
					?? this.#answer(address, port, Type.ack, Code.internalServerError, message.messageId, token);
			}
			else if (this.#send(peer, Type.non, response.code, this.#nextMessageId(), token, options, response.payload) === undefined)
				this.#send(peer, Type.non, Code.internalServerError, this.#nextMessageId(), token, [], undefined);
		};
		try {
			this.#handler.request({ peer, method: message.code, confirmable, message }, reply);
		}
		catch (error) {
			if (!replied) reply({ code: Code.internalServerError });
			throw error;
		}
		if (replied || !confirmable) return;
		timer = this.#ports.clock.setTimeout(() => {
			this.#separateTimers.delete(timer);
			timer = undefined;
			if (replied) return;
			separate = true;
			received.answer = this.#answer(address, port, Type.ack, Code.empty, message.messageId, noBytes);
		}, this.#options.separateAfterMs);
		this.#separateTimers.add(timer);
	}

	/** Whether (peer, message id) arrived within EXCHANGE_LIFETIME; if so, its recorded answer goes out again. */
	#replayed(messageId: number, address: string, port: number): boolean {
		const now = this.#ports.clock.ticks();
		for (const received of this.#received) {
			if (!received || received.messageId !== messageId || received.port !== port || received.address !== address) continue;
			if (now - received.at >= this.#options.exchangeLifetimeMs) return false;
			if (received.answer) this.#transmit({ address, port }, received.answer, received.answer.length);
			return true;
		}
		return false;
	}

	#remember(address: string, port: number, messageId: number): Received {
		const received: Received = { address, port, messageId, at: this.#ports.clock.ticks(), answer: undefined };
		this.#received[this.#receivedNext] = received;
		this.#receivedNext = (this.#receivedNext + 1) % this.#received.length;
		return received;
	}

	/** Sends an ACK (or other message answering `messageId`) and returns a copy to replay; undefined when it did not fit. */
	#answer(address: string, port: number, type: number, code: number, messageId: number, token: Uint8Array,
		options: CoapOption[] = [], payload?: Uint8Array): Uint8Array | undefined {
		const length = this.#send({ address, port }, type, code, messageId, token, options, payload);
		return length === undefined ? undefined : this.#buffer.slice(0, length);
	}

	#reset(address: string, port: number, messageId: number): void {
		this.#send({ address, port }, Type.reset, Code.empty, messageId, noBytes, [], undefined);
	}

	/** Serializes into the send buffer and sends; the length, or undefined when the message does not fit. */
	#send(peer: Peer, type: number, code: number, messageId: number, token: Uint8Array, options: CoapOption[], payload: Uint8Array | undefined): number | undefined {
		const length = this.#serialize(type, code, messageId, token, options, payload);
		if (length !== undefined) this.#transmit(peer, this.#buffer, length);
		return length;
	}

	#serialize(type: number, code: number, messageId: number, token: Uint8Array, options: CoapOption[], payload: Uint8Array | undefined): number | undefined {
		try {
			return serializeMessage({ type, code, messageId, token, options, payload: payload ?? noBytes }, this.#buffer);
		}
		catch (error) {
			this.#ports.log(`coap: ${codeName(code)} not sent: ${(error as Error).message}`);
			return undefined;
		}
	}

	#transmit(peer: Peer, packet: Uint8Array, length: number): void {
		if (!this.#socket) return;
		this.#socket.send(peer.address, peer.port, packet, length);
		this.onActivity?.();
	}

	/** A suspended endpoint opens again for a message to send. */
	#resume(): void {
		if (this.#suspended) this.open(0);
	}

	#nextMessageId(): number {
		this.#messageId = (this.#messageId + 1) & 0xffff;
		return this.#messageId;
	}

	#token(): Uint8Array {
		const token = new Uint8Array(tokenBytes);
		for (let i = 0; i < tokenBytes; i++) token[i] = Math.floor(this.#options.random() * 256);
		return token;
	}
}
